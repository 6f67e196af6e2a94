//! Sessions that last, with committed transactions on real connections (what pg_regress cannot
//! show): refresh-token reuse revokes the session for good, the verified-token cache never
//! outlives a revocation, and tokens signed with ES256 verify in an independent library (PyJWT)
//! from `auth.jwks()` alone. Runs in a database of its own: it rotates and revokes keys.
mod common;

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use tokio_postgres::Client;

const DB: &str = "sessions_test";
const EMAIL: &str = "grace@example.com";
const PASSWORD: &str = "cobol compiler";

async fn db_client(user: &str) -> Client {
    connect_to(DB, user).await
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A private P-256 JWK (test-only key material from a fixed scalar).
fn ec_jwk(kid: &str) -> Value {
    let d = [0x5au8; 32];
    let secret = p256::SecretKey::from_slice(&d).unwrap();
    let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()), "d": b64(&d)})
}

/// A token with any header, signed HS256 with `secret` (for the attack cases).
fn hs256_token(header: Value, claims: Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let sig = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{input}.{sig}")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// "ok" or the SQLSTATE of `sql` run in its own transaction as the app role (through `authenticated`).
async fn outcome(c: &Client, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> String {
    match c.query(sql, params).await {
        Ok(_) => "ok".into(),
        Err(e) => e.code().map(|s| s.code().to_string()).unwrap_or_else(|| e.to_string()),
    }
}

async fn set_up() -> Client {
    let db = own_database(DB, "sessions_app").await;
    db.batch_execute(&format!("SELECT auth.sign_up('{EMAIL}', '{PASSWORD}')")).await.unwrap();
    db
}

async fn start(app: &Client) -> Value {
    app.query_one("SELECT auth.start_session($1, $2)", &[&EMAIL, &PASSWORD]).await.unwrap().get::<_, Value>(0)
}

async fn refresh(app: &Client, token: &str) -> Result<Value, String> {
    app.query_one("SELECT auth.refresh_session($1)", &[&token]).await.map(|r| r.get::<_, Value>(0)).map_err(|e| {
        e.code().map(|c| c.code().to_string()).unwrap_or_default()
            + ": "
            + &e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default()
    })
}

async fn authenticate(app: &Client, token: &str) -> String {
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    let r = outcome(app, "SELECT auth.authenticate($1)", &[&token]).await;
    app.batch_execute("ROLLBACK").await.unwrap();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_refresh_rotation_reuse_and_keys() {
    let db = set_up().await;
    let app = db_client("sessions_app").await;

    // ---- rotation, the grace interval, and reuse detection ------------------------------------
    let s = start(&app).await;
    let first = s["refresh_token"].as_str().unwrap().to_string();
    let r1 = refresh(&app, &first).await.expect("first refresh");
    // A client's concurrent retry (inside health_rls.refresh_reuse_interval, 10 s) is honoured.
    let retry = refresh(&app, &first).await.expect("a retry inside the grace interval");
    assert_ne!(retry["refresh_token"], r1["refresh_token"]);
    // Outside the interval (0 here: set by a superuser for this connection only) reuse revokes
    // the whole session — committed by the background worker although the call itself fails.
    let strict = db_client("postgres").await;
    strict.batch_execute("SET health_rls.refresh_reuse_interval = 0; SET ROLE sessions_app").await.unwrap();
    let reused = refresh(&strict, &first).await.unwrap_err();
    assert!(reused.starts_with("28000: ") && reused.contains("reuse"), "{reused}");
    let revoked: bool = db
        .query_one(
            "SELECT s.revoked_at IS NOT NULL FROM auth.sessions s JOIN auth.refresh_tokens t ON t.session_id = s.id \
              WHERE t.token_hash = sha256(convert_to($1, 'utf8'))",
            &[&first],
        )
        .await
        .unwrap()
        .get(0);
    assert!(revoked, "the session stays revoked after the failed call");
    // ... so the legitimate holder's next refresh is refused, and so are the session's access tokens.
    let legit = refresh(&app, r1["refresh_token"].as_str().unwrap()).await.unwrap_err();
    assert!(legit.starts_with("28000: ") && legit.contains("revoked session"), "{legit}");
    assert_eq!(authenticate(&app, r1["access_token"].as_str().unwrap()).await, "28000");

    // ---- another user's revoked session; sign_out_everywhere -----------------------------------
    db.batch_execute("SELECT auth.sign_up('eve@example.com', 'eve password 1')").await.unwrap();
    let eve = app
        .query_one("SELECT auth.start_session('eve@example.com', 'eve password 1')", &[])
        .await
        .unwrap()
        .get::<_, Value>(0);
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query_one("SELECT auth.authenticate($1)", &[&eve["access_token"].as_str().unwrap()]).await.unwrap();
    app.batch_execute("SELECT auth.sign_out(); COMMIT").await.unwrap();
    let eves = refresh(&app, eve["refresh_token"].as_str().unwrap()).await.unwrap_err();
    assert!(eves.starts_with("28000"), "{eves}");
    let a = start(&app).await;
    let b = start(&app).await;
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query_one("SELECT auth.authenticate($1)", &[&a["access_token"].as_str().unwrap()]).await.unwrap();
    app.batch_execute("SELECT auth.sign_out_everywhere(); COMMIT").await.unwrap();
    for s in [&a, &b] {
        assert!(refresh(&app, s["refresh_token"].as_str().unwrap()).await.unwrap_err().starts_with("28000"));
        assert_eq!(
            authenticate(&app, s["access_token"].as_str().unwrap()).await,
            "28000",
            "access tokens of every session stop"
        );
    }

    // ---- the verified-token cache never outlives a session revocation -------------------------
    let c = start(&app).await;
    let access = c["access_token"].as_str().unwrap();
    assert_eq!(authenticate(&app, access).await, "ok");
    assert_eq!(authenticate(&app, access).await, "ok", "served from this backend's cache");
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query_one("SELECT auth.authenticate($1)", &[&access]).await.unwrap();
    app.batch_execute("SELECT auth.sign_out(); COMMIT").await.unwrap();
    assert_eq!(authenticate(&app, access).await, "28000", "refused on its next use in the same backend");

    // ---- ES256 signing, the JWKS, and PyJWT ----------------------------------------------------
    db.query_one("SELECT auth.add_key($1, 'standby')", &[&ec_jwk("ec-it")]).await.unwrap();
    db.query_one("SELECT auth.rotate_key()", &[]).await.unwrap();
    let es = start(&app).await;
    let es_access = es["access_token"].as_str().unwrap().to_string();
    // Published to anyone: read as anon.
    app.batch_execute("SET ROLE anon").await.unwrap();
    let jwks: Value = app.query_one("SELECT auth.jwks()", &[]).await.unwrap().get(0);
    app.batch_execute("RESET ROLE").await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "one asymmetric key, no oct key: {jwks}");
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(keys[0].get(private).is_none(), "no private member {private} in the JWKS");
    }
    let py = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import jwt, json, sys\n\
             keys = jwt.PyJWKSet.from_dict(json.loads(sys.argv[1]))\n\
             kid = jwt.get_unverified_header(sys.argv[2])['kid']\n\
             key = [k for k in keys.keys if k.key_id == kid][0]\n\
             claims = jwt.decode(sys.argv[2], key=key.key, algorithms=['ES256'], audience='authenticated')\n\
             print(claims['sub'])",
            &jwks.to_string(),
            &es_access,
        ])
        .output()
        .expect("python3 with PyJWT and cryptography (scripts/setup installs them)");
    assert!(py.status.success(), "PyJWT refused our ES256 token: {}", String::from_utf8_lossy(&py.stderr));
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), es["user"]["id"].as_str().unwrap(), "PyJWT read our sub");

    // ---- attacks on authenticate, as the app role (28000 each) ---------------------------------
    let sub = es["user"]["id"].as_str().unwrap().to_string();
    let claims = |s: &str| json!({"sub": s, "aud": "authenticated", "exp": now() + 600, "role": "authenticated"});
    // HS256 signed with the ES256 key's public half as the HMAC secret (key confusion).
    let public_text = keys[0].to_string();
    let confused = hs256_token(json!({"alg": "HS256", "kid": "ec-it"}), claims(&sub), public_text.as_bytes());
    assert_eq!(authenticate(&app, &confused).await, "28000", "public key as HMAC secret");
    let crit = hs256_token(
        json!({"alg": "HS256", "kid": "it1", "crit": ["x-unknown"], "x-unknown": 1}),
        claims(&sub),
        HS_SECRET,
    );
    assert_eq!(authenticate(&app, &crit).await, "28000", "crit header");
    let plain = hs256_token(json!({"alg": "HS256", "kid": "it1"}), claims(&sub), HS_SECRET);
    assert_eq!(authenticate(&app, &plain).await, "ok", "the same token without crit is fine");
    for odd in [format!("{{{sub}}}"), format!("urn:uuid:{sub}"), sub.replace('-', ""), sub.to_uppercase()] {
        let t = hs256_token(json!({"alg": "HS256", "kid": "it1"}), claims(&odd), HS_SECRET);
        assert_eq!(authenticate(&app, &t).await, "28000", "non-canonical sub {odd}");
    }

    // ---- key statuses: a previous key verifies, a revoked one does not (cache or not) ----------
    assert_eq!(authenticate(&app, &plain).await, "ok", "it1 is previous now and still verifies");
    assert_eq!(authenticate(&app, &es_access).await, "ok");
    db.query_one("SELECT auth.revoke_key('ec-it')", &[]).await.unwrap();
    assert_eq!(authenticate(&app, &es_access).await, "28000", "a revoked key's token is refused, cached or not");
    let no_key = refresh(&app, es["refresh_token"].as_str().unwrap()).await.unwrap_err();
    assert!(no_key.starts_with("55000"), "no current key after revoking it: {no_key}");
}
