//! Signing access tokens with the current key (docs/sql-reference.md, "Keys"): an oct key signs
//! HS256/384/512 with its secret; a private EC P-256 (ES256), Ed25519 (EdDSA) or RSA (RS*/PS*)
//! JWK signs with its private half. The private members are turned into the DER form
//! `jsonwebtoken` signs with by the same RustCrypto crates its backend uses, and checked against
//! the public members, so a JWK whose halves do not belong together is refused at `add_key`.
use super::keys::alg_name;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::Value;

/// A key that can sign, with the algorithm it is bound to.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    key: EncodingKey,
}

fn member(jwk: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk.get(name).and_then(Value::as_str).ok_or_else(|| format!("JWK member \"{name}\" is missing"))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("JWK member \"{name}\" is not base64url"))
}

/// The algorithms we sign with (ES384 keys only verify).
pub fn signs(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::ES384)
}

/// Does this JWK carry private material (so it can sign)?
pub fn has_private_part(jwk: &Value) -> bool {
    match jwk.get("kty").and_then(Value::as_str) {
        Some("oct") => jwk.get("k").is_some(),
        Some("EC" | "OKP" | "RSA") => jwk.get("d").is_some(),
        _ => false,
    }
}

/// Never shows the key, only what it is.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey {{ kid: {:?}, alg: {} }}", self.kid, alg_name(self.alg))
    }
}

impl SigningKey {
    /// The signing half of a stored JWK whose algorithm `add_key` already checked.
    pub fn from_jwk(kid: &str, alg: Algorithm, jwk: &Value) -> Result<SigningKey, String> {
        let key = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => EncodingKey::from_secret(&member(jwk, "k")?),
            Algorithm::ES256 => {
                use p256::pkcs8::EncodePrivateKey;
                let secret = p256::SecretKey::from_slice(&member(jwk, "d")?)
                    .map_err(|_| "EC member d is not a P-256 private key")?;
                let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
                if point.x().map(|x| x.to_vec()) != Some(member(jwk, "x")?)
                    || point.y().map(|y| y.to_vec()) != Some(member(jwk, "y")?)
                {
                    return Err("EC members x, y are not the public half of d".into());
                }
                EncodingKey::from_ec_der(secret.to_pkcs8_der().map_err(|_| "cannot encode the EC key")?.as_bytes())
            }
            Algorithm::EdDSA => {
                use ed25519_dalek::pkcs8::EncodePrivateKey;
                let d: [u8; 32] = member(jwk, "d")?.try_into().map_err(|_| "OKP member d must be 32 bytes")?;
                let signing = ed25519_dalek::SigningKey::from_bytes(&d);
                if signing.verifying_key().to_bytes().to_vec() != member(jwk, "x")? {
                    return Err("OKP member x is not the public half of d".into());
                }
                EncodingKey::from_ed_der(
                    signing.to_pkcs8_der().map_err(|_| "cannot encode the Ed25519 key")?.as_bytes(),
                )
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let big = |name: &str| member(jwk, name).map(|b| rsa::BigUint::from_bytes_be(&b));
                let primes = vec![big("p")?, big("q")?];
                let private = rsa::RsaPrivateKey::from_components(big("n")?, big("e")?, big("d")?, primes)
                    .map_err(|_| "RSA members do not form a private key")?;
                private.validate().map_err(|_| "RSA members do not form a valid private key")?;
                EncodingKey::from_rsa_der(private.to_pkcs1_der().map_err(|_| "cannot encode the RSA key")?.as_bytes())
            }
            other => return Err(format!("{} keys cannot sign here", alg_name(other))),
        };
        Ok(SigningKey { kid: kid.to_string(), alg, key })
    }

    /// A compact JWS of `claims`, with our kid in the header.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.key).map_err(|e| format!("signing failed: {e}"))
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::auth::keys::{describe_jwk, parse_jwk, KeySet};
    use crate::auth::verify::{verify_token, VerifyConfig};
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A private P-256 JWK made from a fixed scalar (test-only key material).
    pub fn ec_p256_jwk(seed: u8) -> Value {
        let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
        json!({"kty": "EC", "crv": "P-256", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()), "d": b64(&[seed; 32])})
    }

    /// A private Ed25519 JWK made from a fixed seed (test-only key material).
    pub fn ed25519_jwk(seed: u8) -> Value {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&signing.verifying_key().to_bytes()), "d": b64(&[seed; 32])})
    }

    fn claims() -> Value {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        json!({"sub": "8f14e45f-ceea-467f-a0e6-f6b53d2d6b0a", "aud": "authenticated", "exp": now + 600})
    }

    fn round_trip(jwk: Value) {
        let described = describe_jwk(&jwk).unwrap();
        assert!(has_private_part(&jwk));
        let key = SigningKey::from_jwk(&described.kid, described.alg, &jwk).unwrap();
        let token = key.sign(&claims()).unwrap();
        // Verified with the PUBLIC half only, as another service holding the JWKS would.
        let public = KeySet::from_keys(vec![parse_jwk(&described.public).unwrap()]);
        assert!(!has_private_part(&described.public), "the public form has no private member");
        let cfg = VerifyConfig { audience: Some("authenticated".into()), issuer: None, leeway_seconds: 0 };
        assert!(verify_token(&token, &public, &cfg).is_ok(), "{}", described.kty);
    }

    #[test]
    fn es256_and_eddsa_sign_tokens_their_public_halves_verify() {
        round_trip(ec_p256_jwk(7));
        round_trip(ed25519_jwk(9));
    }

    #[test]
    fn halves_that_do_not_belong_together_are_refused() {
        let mut ec = ec_p256_jwk(7);
        ec["x"] = ec_p256_jwk(8)["x"].clone();
        assert!(SigningKey::from_jwk("k", Algorithm::ES256, &ec).unwrap_err().contains("not the public half"));
        let mut ed = ed25519_jwk(9);
        ed["x"] = ed25519_jwk(10)["x"].clone();
        assert!(SigningKey::from_jwk("k", Algorithm::EdDSA, &ed).unwrap_err().contains("not the public half"));
        let public_only: Value = json!({"kty":"EC","crv":"P-256","x":"a","y":"b"});
        assert!(!has_private_part(&public_only));
        assert!(SigningKey::from_jwk("k", Algorithm::ES256, &public_only).unwrap_err().contains("\"d\" is missing"));
    }
}
