//! How long one first-time signature verification takes with the jsonwebtoken backend this binary
//! was built with (`--features rust_crypto` or `--features aws_lc_rs`): the same call the
//! extension makes (`jsonwebtoken::crypto::verify` with a `DecodingKey` from a JWK), over distinct
//! tokens, so nothing is cached. Prints one line per algorithm: `ALG microseconds-per-verify`.
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use std::time::Instant;

/// Distinct signing inputs `header.payload` (the payload differs by its jti).
fn messages(alg: &str, n: usize) -> Vec<String> {
    let header = B64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"k"}}"#));
    (0..n)
        .map(|i| {
            let payload = B64.encode(format!(
                r#"{{"sub":"11111111-1111-4111-8111-111111111111","aud":"authenticated","exp":4102444800,"jti":"{i}"}}"#
            ));
            format!("{header}.{payload}")
        })
        .collect()
}

fn jwk(value: serde_json::Value) -> DecodingKey {
    let jwk: Jwk = serde_json::from_value(value).expect("public JWK");
    DecodingKey::from_jwk(&jwk).expect("usable key")
}

/// Verifies every (message, signature) once; µs per verification (all must verify).
fn time_verify(signed: &[(String, String)], key: &DecodingKey, alg: Algorithm) -> f64 {
    let start = Instant::now();
    for (message, signature) in signed {
        let ok = jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, alg).expect("verify call");
        assert!(ok, "a valid signature must verify");
    }
    start.elapsed().as_secs_f64() * 1e6 / signed.len() as f64
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mut rng = rand::thread_rng();

    // ES256
    let es = p256::ecdsa::SigningKey::random(&mut rng);
    let point = es.verifying_key().to_encoded_point(false);
    let key = jwk(serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k", "alg": "ES256",
        "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())}));
    let signed: Vec<(String, String)> = messages("ES256", n)
        .into_iter()
        .map(|m| {
            let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&es, m.as_bytes());
            let s = B64.encode(sig.to_bytes());
            (m, s)
        })
        .collect();
    println!("ES256 {:.1}", time_verify(&signed, &key, Algorithm::ES256));

    // EdDSA
    let ed = ed25519_dalek::SigningKey::generate(&mut rng);
    let key = jwk(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "k", "alg": "EdDSA",
        "x": B64.encode(ed.verifying_key().as_bytes())}));
    let signed: Vec<(String, String)> = messages("EdDSA", n)
        .into_iter()
        .map(|m| {
            let s = B64.encode(ed25519_dalek::Signer::sign(&ed, m.as_bytes()).to_bytes());
            (m, s)
        })
        .collect();
    println!("EdDSA {:.1}", time_verify(&signed, &key, Algorithm::EdDSA));

    // RS256 (2048-bit): signing is slow, so fewer tokens.
    use rsa::traits::PublicKeyParts;
    let rs = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
    let key = jwk(serde_json::json!({"kty": "RSA", "kid": "k", "alg": "RS256",
        "n": B64.encode(rs.n().to_bytes_be()), "e": B64.encode(rs.e().to_bytes_be())}));
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rs);
    let signed: Vec<(String, String)> = messages("RS256", (n / 4).max(50))
        .into_iter()
        .map(|m| {
            let sig = rsa::signature::Signer::sign(&signer, m.as_bytes());
            let s = B64.encode(rsa::signature::SignatureEncoding::to_vec(&sig));
            (m, s)
        })
        .collect();
    println!("RS256 {:.1}", time_verify(&signed, &key, Algorithm::RS256));

    // HS256
    use hmac::Mac;
    let secret = b"health_rls regression secret, 32+ bytes long!!";
    let key = DecodingKey::from_secret(secret);
    let signed: Vec<(String, String)> = messages("HS256", n)
        .into_iter()
        .map(|m| {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(m.as_bytes());
            let s = B64.encode(mac.finalize().into_bytes());
            (m, s)
        })
        .collect();
    println!("HS256 {:.1}", time_verify(&signed, &key, Algorithm::HS256));
}
