//! Verification of compact JWS access tokens: the pure core of `auth.authenticate`.
//!
//! The algorithm is always the key's, never the token's alone: a token whose header names
//! another algorithm than its key is refused before any signature work (no `none`, no
//! HS/RS confusion). Errors name the reason, never the token.
use crate::auth::keys::{KeySet, VerifyingKey};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use std::fmt;
use uuid::Uuid;

/// Tokens longer than this are refused unparsed (a cheap guard against memory abuse).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    pub audience: Option<String>,
    pub issuer: Option<String>,
    pub leeway_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Empty,
    TooLarge,
    Malformed(&'static str),
    DuplicateClaim,
    UnknownKey,
    AlgorithmNotAllowed,
    BadSignature,
    Expired,
    NotYetValid,
    MissingClaim(String),
    Audience,
    Issuer,
    SubjectNotUuid,
    RevokedSession,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Empty => write!(f, "token rejected: empty token"),
            TokenError::TooLarge => {
                write!(f, "token rejected: larger than {MAX_TOKEN_BYTES} bytes")
            }
            TokenError::Malformed(what) => write!(f, "token rejected: malformed token ({what})"),
            TokenError::DuplicateClaim => {
                write!(f, "token rejected: malformed token (duplicate JSON member)")
            }
            TokenError::UnknownKey => {
                write!(f, "token rejected: unknown key (no key in auth.keys matches its kid and algorithm)")
            }
            TokenError::AlgorithmNotAllowed => {
                write!(f, "token rejected: algorithm not allowed for its key")
            }
            TokenError::BadSignature => write!(f, "token rejected: bad signature"),
            TokenError::Expired => write!(f, "token rejected: expired"),
            TokenError::NotYetValid => {
                write!(f, "token rejected: not yet valid (nbf in the future)")
            }
            TokenError::MissingClaim(c) => {
                write!(f, "token rejected: required claim \"{c}\" missing")
            }
            TokenError::Audience => write!(f, "token rejected: audience (aud) does not match health_rls.jwt_audience"),
            TokenError::Issuer => write!(f, "token rejected: issuer (iss) does not match health_rls.jwt_issuer"),
            TokenError::SubjectNotUuid => write!(f, "token rejected: sub claim is not a UUID"),
            TokenError::RevokedSession => {
                write!(
                    f,
                    "token rejected: revoked session (signed out, or the session or its account no longer exists)"
                )
            }
        }
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub sub: Uuid,
    pub claims: Map<String, Value>,
    /// The payload exactly as signed (JSON text): what becomes `request.jwt.claims`.
    pub payload_json: String,
    /// Verified with a key that signs (`VerifyingKey::signs`): a token of ours, so its
    /// `session_id` must name a live session of its `sub`.
    pub signed_here: bool,
}

impl VerifiedToken {
    pub fn session_id(&self) -> Option<&str> {
        self.claims.get("session_id").and_then(Value::as_str)
    }

    /// Whether `authenticate` must find this token's session: a token signed with one of our
    /// signing keys that carries a `session_id` (any JSON value) was issued by `sign_in`, and is
    /// accepted only while that session exists, is active and belongs to `sub`. Tokens of an
    /// external issuer (verify-only keys) and our keys' session-less tokens have no session here.
    pub fn needs_session(&self) -> bool {
        self.signed_here && self.claims.contains_key("session_id")
    }
}

fn now_epoch() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Verify signature and claims of `token` against `keys`. Session revocation is checked by
/// the caller (it needs the database).
///
/// One pass over each part: base64url-decode, parse (refusing duplicate members), check the
/// signature with `jsonwebtoken::crypto::verify` under the key's own algorithm, then the claims.
pub fn verify_token(token: &str, keys: &KeySet, config: &VerifyConfig) -> Result<VerifiedToken, TokenError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("a compact JWS has three dot-separated parts"));
    };
    if sig.is_empty() {
        return Err(TokenError::BadSignature);
    }
    let header = parse_strict_object(&b64url(h64)?)?;
    // RFC 7515 §4.1.11: a recipient must refuse a JWS whose `crit` names an extension it does
    // not understand. We understand none, so any `crit` is refused.
    if header.contains_key("crit") {
        return Err(TokenError::Malformed("header has crit (no JWS extension is supported)"));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::Malformed("header has no alg"))?
        .parse::<Algorithm>()
        .map_err(|_| TokenError::AlgorithmNotAllowed)?;
    let key = select_key(keys, header.get("kid").and_then(Value::as_str), alg)?;
    if alg != key.alg {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    let payload_bytes = b64url(p64)?;
    let signed = &token[..h64.len() + 1 + p64.len()];
    match jsonwebtoken::crypto::verify(sig, signed.as_bytes(), &key.decoding, key.alg) {
        Ok(true) => {}
        Ok(false) => return Err(TokenError::BadSignature),
        Err(e) => return Err(map_error(e)),
    }
    let claims = parse_strict_object(&payload_bytes)?;
    check_claims(&claims, config, now_epoch())?;
    let sub = claims.get("sub").and_then(Value::as_str).and_then(canonical_uuid).ok_or(TokenError::SubjectNotUuid)?;
    let payload_json = String::from_utf8(payload_bytes).map_err(|_| TokenError::Malformed("not UTF-8"))?;
    Ok(VerifiedToken { sub, claims, payload_json, signed_here: key.signs })
}

/// A UUID in its canonical text form only (lower-case, hyphenated): `Uuid::parse_str` also takes
/// braces, `urn:uuid:`, no hyphens and upper case, and then `auth.uid()` and `auth.jwt()->>'sub'`
/// would disagree on what the subject is.
pub fn canonical_uuid(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s).ok().filter(|u| u.hyphenated().to_string() == s)
}

fn b64url(segment: &str) -> Result<Vec<u8>, TokenError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed("not base64url"))
}

fn numeric_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(TokenError::Malformed("a registered claim has the wrong type")),
        Some(_) => Err(TokenError::Malformed("a registered claim has the wrong type")),
    }
}

/// exp (required), nbf, aud, iss — with the configured leeway.
pub fn check_claims(claims: &Map<String, Value>, config: &VerifyConfig, now: i64) -> Result<(), TokenError> {
    let leeway = config.leeway_seconds as i64;
    let exp = numeric_claim(claims, "exp")?.ok_or_else(|| TokenError::MissingClaim("exp".into()))?;
    if exp + leeway < now {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = numeric_claim(claims, "nbf")? {
        if nbf - leeway > now {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some(aud) = &config.audience {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => a == aud,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud.as_str())),
            None => return Err(TokenError::MissingClaim("aud".into())),
            _ => false,
        };
        if !ok {
            return Err(TokenError::Audience);
        }
    }
    if let Some(iss) = &config.issuer {
        match claims.get("iss") {
            Some(Value::String(i)) if i == iss => {}
            None => return Err(TokenError::MissingClaim("iss".into())),
            _ => return Err(TokenError::Issuer),
        }
    }
    if !claims.contains_key("sub") {
        return Err(TokenError::MissingClaim("sub".into()));
    }
    Ok(())
}

/// The key named by `kid`; without a kid, the only key whose algorithm matches.
fn select_key<'k>(
    keys: &'k KeySet,
    kid: Option<&str>,
    alg: jsonwebtoken::Algorithm,
) -> Result<&'k VerifyingKey, TokenError> {
    match kid {
        Some(kid) => keys.by_kid(kid).ok_or(TokenError::UnknownKey),
        None => {
            let mut matching = keys.iter().filter(|k| k.alg == alg);
            match (matching.next(), matching.next()) {
                (Some(only), None) => Ok(only),
                _ => Err(TokenError::UnknownKey),
            }
        }
    }
}

fn map_error(e: jsonwebtoken::errors::Error) -> TokenError {
    match e.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::InvalidAlgorithmName => {
            TokenError::AlgorithmNotAllowed
        }
        ErrorKind::Base64(_) => TokenError::Malformed("not base64url"),
        _ => TokenError::BadSignature,
    }
}

/// Parse a JSON object, refusing duplicate member names at any depth: parsers disagree on
/// which duplicate wins, so such a token is refused instead of guessed at.
fn parse_strict_object(bytes: &[u8]) -> Result<Map<String, Value>, TokenError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde::de::Deserialize::deserialize(&mut de) {
        Ok(StrictJson(Value::Object(m))) => {
            de.end().map(|_| m).map_err(|_| TokenError::Malformed("trailing data after JSON"))
        }
        Ok(_) => Err(TokenError::Malformed("a JWS part is not a JSON object")),
        Err(e) if e.to_string().starts_with(DUPLICATE) => Err(TokenError::DuplicateClaim),
        Err(_) => Err(TokenError::Malformed("a JWS part is not JSON")),
    }
}

const DUPLICATE: &str = "duplicate member";

/// A JSON value that errors on any object with a repeated member name.
struct StrictJson(Value);

impl<'de> serde::de::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = StrictJson;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::Null))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<StrictJson, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictJson(v)) = seq.next_element::<StrictJson>()? {
            out.push(v);
        }
        Ok(StrictJson(Value::Array(out)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StrictJson, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let StrictJson(v) = map.next_value::<StrictJson>()?;
            if out.insert(k, v).is_some() {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
        }
        Ok(StrictJson(Value::Object(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::parse_jwk;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"an HS256 secret that is long enough for tests";
    const SUB: &str = "8f14e45f-ceea-467f-a0e6-f6b53d2d6b0a";

    fn hs_keys() -> KeySet {
        use base64::Engine;
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET);
        KeySet::from_keys(vec![parse_jwk(&json!({"kty":"oct","kid":"k1","alg":"HS256","k":k})).unwrap()])
    }

    fn config() -> VerifyConfig {
        VerifyConfig { audience: Some("authenticated".into()), issuer: None, leeway_seconds: 30 }
    }

    fn now() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    }

    fn sign(claims: Value, kid: Option<&str>) -> String {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = kid.map(str::to_string);
        encode(&h, &claims, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    fn good_claims() -> Value {
        json!({"sub": SUB, "aud": "authenticated", "exp": now() + 600, "role": "authenticated"})
    }

    #[test]
    fn our_tokens_with_a_session_id_need_their_session() {
        let mut with_session = good_claims();
        with_session["session_id"] = json!("0b9e2f6c-5f7e-4d0a-9a43-0d0c8f3c1e55");
        assert!(verify_token(&sign(with_session, Some("k1")), &hs_keys(), &config()).unwrap().needs_session());
        // Any value counts, a non-UUID too: it then names no session and is refused.
        let mut odd = good_claims();
        odd["session_id"] = json!(42);
        assert!(verify_token(&sign(odd, Some("k1")), &hs_keys(), &config()).unwrap().needs_session());
        assert!(!verify_token(&sign(good_claims(), Some("k1")), &hs_keys(), &config()).unwrap().needs_session());
    }

    #[test]
    fn accepts_a_good_token_with_and_without_kid() {
        for kid in [Some("k1"), None] {
            let v = verify_token(&sign(good_claims(), kid), &hs_keys(), &config()).unwrap();
            assert_eq!(v.sub.to_string(), SUB);
        }
    }

    #[test]
    fn rejects_expired_and_not_yet_valid() {
        let mut c = good_claims();
        c["exp"] = json!(now() - 120);
        assert_eq!(verify_token(&sign(c, Some("k1")), &hs_keys(), &config()), Err(TokenError::Expired));
        let mut c = good_claims();
        c["exp"] = json!(now() - 10); // inside the leeway
        assert!(verify_token(&sign(c, Some("k1")), &hs_keys(), &config()).is_ok());
        let mut c = good_claims();
        c["nbf"] = json!(now() + 600);
        assert_eq!(verify_token(&sign(c, Some("k1")), &hs_keys(), &config()), Err(TokenError::NotYetValid));
    }

    #[test]
    fn requires_exp_and_uuid_sub() {
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove("exp");
        assert!(matches!(verify_token(&sign(c, Some("k1")), &hs_keys(), &config()), Err(TokenError::MissingClaim(_))));
        let mut c = good_claims();
        c["sub"] = json!("alice");
        assert_eq!(verify_token(&sign(c, Some("k1")), &hs_keys(), &config()), Err(TokenError::SubjectNotUuid));
        // The same UUID in every non-canonical spelling is refused: auth.uid() and
        // auth.jwt()->>'sub' must never disagree.
        for other in [
            format!("{{{SUB}}}"),
            format!("urn:uuid:{SUB}"),
            SUB.replace('-', ""),
            SUB.to_uppercase(),
            format!(" {SUB}"),
        ] {
            let mut c = good_claims();
            c["sub"] = json!(other);
            assert_eq!(
                verify_token(&sign(c, Some("k1")), &hs_keys(), &config()),
                Err(TokenError::SubjectNotUuid),
                "{other}"
            );
        }
    }

    #[test]
    fn refuses_any_crit_header() {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let mut header = serde_json::to_value(&h).unwrap();
        header["crit"] = json!(["x-unknown"]);
        header["x-unknown"] = json!(true);
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let signing_input = format!("{}.{}", b64(&header), b64(&good_claims()));
        let sig =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &EncodingKey::from_secret(SECRET), Algorithm::HS256)
                .unwrap();
        let token = format!("{signing_input}.{sig}");
        assert!(
            matches!(verify_token(&token, &hs_keys(), &config()), Err(TokenError::Malformed(m)) if m.contains("crit"))
        );
    }

    #[test]
    fn checks_audience_and_issuer() {
        let mut c = good_claims();
        c["aud"] = json!("someone-else");
        assert_eq!(verify_token(&sign(c, Some("k1")), &hs_keys(), &config()), Err(TokenError::Audience));
        let cfg = VerifyConfig { issuer: Some("https://issuer.example".into()), ..config() };
        let mut c = good_claims();
        c["iss"] = json!("https://evil.example");
        assert_eq!(verify_token(&sign(c, Some("k1")), &hs_keys(), &cfg), Err(TokenError::Issuer));
    }

    #[test]
    fn rejects_tampering_unknown_kid_alg_none_and_duplicates() {
        let token = sign(good_claims(), Some("k1"));
        let parts: Vec<&str> = token.split('.').collect();
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let mut evil = good_claims();
        evil["sub"] = json!("00000000-0000-4000-8000-000000000000");
        let tampered = format!("{}.{}.{}", parts[0], b64(&evil), parts[2]);
        assert_eq!(verify_token(&tampered, &hs_keys(), &config()), Err(TokenError::BadSignature));
        assert_eq!(
            verify_token(&sign(good_claims(), Some("nope")), &hs_keys(), &config()),
            Err(TokenError::UnknownKey)
        );
        let none = format!("{}.{}.", b64(&json!({"alg":"none","kid":"k1"})), parts[1]);
        assert!(verify_token(&none, &hs_keys(), &config()).is_err());
        let none_sig = format!("{}.{}.{}", b64(&json!({"alg":"none","kid":"k1"})), parts[1], parts[2]);
        assert!(verify_token(&none_sig, &hs_keys(), &config()).is_err());
        let hs512 = format!("{}.{}.{}", b64(&json!({"alg":"HS512","kid":"k1"})), parts[1], parts[2]);
        assert_eq!(verify_token(&hs512, &hs_keys(), &config()), Err(TokenError::AlgorithmNotAllowed));
        let dup_payload =
            format!(r#"{{"sub":"{SUB}","sub":"00000000-0000-4000-8000-000000000000","exp":{}}}"#, now() + 60);
        // Properly signed, so the refusal is about the duplicate, not the signature.
        let signing_input =
            format!("{}.{}", parts[0], base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(dup_payload));
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(SECRET).unwrap();
        hmac::Mac::update(&mut mac, signing_input.as_bytes());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hmac::Mac::finalize(mac).into_bytes());
        let dup = format!("{signing_input}.{sig}");
        assert_eq!(verify_token(&dup, &hs_keys(), &config()), Err(TokenError::DuplicateClaim));
    }

    #[test]
    fn rejects_garbage_without_echoing_it() {
        for junk in ["", "abc", "a.b", "a.b.c.d", "!!!.@@@.###", &"x".repeat(MAX_TOKEN_BYTES + 1)] {
            let err = verify_token(junk, &hs_keys(), &config()).unwrap_err();
            if junk.len() > 3 {
                assert!(!err.to_string().contains(junk), "{err}");
            }
        }
    }
}

/// Property tests: the token verifier never panics, and never accepts a token that differs
/// from a validly signed one in any byte that changes what was signed.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::auth::keys::parse_jwk;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"a proptest HS256 secret, 32+ bytes long";

    fn keys() -> KeySet {
        use base64::Engine;
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET);
        KeySet::from_keys(vec![parse_jwk(&serde_json::json!({"kty":"oct","kid":"p1","alg":"HS256","k":k})).unwrap()])
    }

    fn config() -> VerifyConfig {
        VerifyConfig { audience: Some("authenticated".into()), issuer: None, leeway_seconds: 0 }
    }

    fn valid() -> String {
        let mut h = jsonwebtoken::Header::new(Algorithm::HS256);
        h.kid = Some("p1".into());
        let c = serde_json::json!({"sub": "8f14e45f-ceea-467f-a0e6-f6b53d2d6b0a", "aud": "authenticated", "exp": 4102444800u64});
        jsonwebtoken::encode(&h, &c, &jsonwebtoken::EncodingKey::from_secret(SECRET)).unwrap()
    }

    /// The bytes a token's three parts decode to (base64url has spare bits in its last
    /// character, so two spellings can carry the same bytes).
    fn decoded(token: &str) -> Option<Vec<Vec<u8>>> {
        use base64::Engine;
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return None;
        }
        parts.iter().map(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok()).collect()
    }

    proptest! {
        #[test]
        fn any_text_is_refused_without_panicking(s in ".{0,600}") {
            prop_assert!(verify_token(&s, &keys(), &config()).is_err());
        }

        #[test]
        fn arbitrary_three_part_tokens_are_refused(h in "[A-Za-z0-9_-]{0,80}", p in "[A-Za-z0-9_-]{0,200}", s in "[A-Za-z0-9_-]{0,90}") {
            let token = [h, p, s].join(".");
            prop_assert!(verify_token(&token, &keys(), &config()).is_err());
        }

        #[test]
        fn a_mutated_token_is_never_accepted(pos in 0usize..400, byte in 0x21u8..0x7f) {
            let good = valid();
            prop_assert!(verify_token(&good, &keys(), &config()).is_ok());
            let mut bytes = good.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            let mutated = String::from_utf8(bytes).unwrap();
            // Same decoded bytes = the same signed token spelled differently: not a forgery.
            prop_assume!(decoded(&mutated) != decoded(&good));
            prop_assert!(verify_token(&mutated, &keys(), &config()).is_err(), "accepted {mutated}");
        }
    }
}
