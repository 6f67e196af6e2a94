-- Baseline for bench part 3: JWT verification in plain SQL over pgcrypto, the way pgjwt does it
-- (split on '.', HMAC the signing input with pgcrypto, compare base64url, parse the JSON parts),
-- plus the exp check our authenticate also makes. Written here after pgjwt's design (MIT,
-- github.com/michelp/pgjwt); not a copy of its source.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA pgjwt_style;

CREATE FUNCTION pgjwt_style.url_encode(data bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT translate(encode(data, 'base64'), E'+/=\n', '-_') $$;

CREATE FUNCTION pgjwt_style.url_decode(data text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT decode(t || repeat('=', (4 - length(t) % 4) % 4), 'base64')
      FROM (SELECT translate(data, '-_', '+/') AS t) s
$$;

CREATE FUNCTION pgjwt_style.algorithm_sign(signables text, secret text, algorithm text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT pgjwt_style.url_encode(hmac(signables, secret,
        CASE algorithm WHEN 'HS256' THEN 'sha256' WHEN 'HS384' THEN 'sha384' WHEN 'HS512' THEN 'sha512' END))
$$;

CREATE FUNCTION pgjwt_style.verify(token text, secret text, algorithm text DEFAULT 'HS256')
RETURNS TABLE (header json, payload json, valid boolean) LANGUAGE sql AS $$
    SELECT convert_from(pgjwt_style.url_decode(r[1]), 'utf8')::json,
           convert_from(pgjwt_style.url_decode(r[2]), 'utf8')::json,
           r[3] = pgjwt_style.algorithm_sign(r[1] || '.' || r[2], secret, algorithm)
           AND (convert_from(pgjwt_style.url_decode(r[2]), 'utf8')::json ->> 'exp')::float8 > extract(epoch FROM now())
      FROM regexp_split_to_array(token, '\.') r
$$;
