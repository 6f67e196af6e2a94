//! JWK parsing: which algorithm a key may verify, bound to the key, never to the token.
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// A verification key with the one algorithm it is allowed to verify.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: String,
    pub alg: Algorithm,
    pub decoding: DecodingKey,
    /// The key holds what signs (a shared secret, or the private members of a pair): tokens it
    /// verifies may be ones this database issued. A public key of an external identity provider
    /// only verifies.
    pub signs: bool,
}

/// The keys `auth.authenticate` may use, in `auth.keys` order (newest first).
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    pub fn from_keys(keys: Vec<VerifyingKey>) -> Self {
        KeySet { keys }
    }
    pub fn by_kid(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter()
    }
}

/// A JWK that passed `parse_jwk`, with what `auth.keys` stores about it.
#[derive(Debug)]
pub struct ParsedJwk {
    pub kid: String,
    pub kty: &'static str,
    pub alg: Algorithm,
    /// The key without private members: what may be published (JWKS).
    pub public: Value,
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        _ => "unsupported",
    }
}

fn parse_alg(name: &str) -> Result<Algorithm, String> {
    name.parse::<Algorithm>().map_err(|_| format!("unsupported JWK alg \"{name}\""))
}

/// Validate a JWK for `auth.add_key`: supported kty, an algorithm that fits it (stated, or
/// implied by the curve), a usable key, a kid (the RFC 7638 thumbprint when absent).
pub fn describe_jwk(jwk_json: &Value) -> Result<ParsedJwk, String> {
    if !jwk_json.is_object() {
        return Err("a JWK must be a JSON object".into());
    }
    let jwk: Jwk = serde_json::from_value(jwk_json.clone())
        .map_err(|_| "not a valid JWK (check kty and its members)".to_string())?;
    let stated = jwk_json.get("alg").and_then(Value::as_str).map(parse_alg).transpose()?;
    let (kty, alg, private_members): (&'static str, Algorithm, &[&str]) = match &jwk.algorithm {
        AlgorithmParameters::OctetKey(p) => {
            let alg = stated.ok_or("an oct JWK needs \"alg\" (HS256, HS384 or HS512)")?;
            if !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                return Err(format!("alg {} does not fit an oct key", alg_name(alg)));
            }
            let bytes = b64url(&p.value).ok_or("oct JWK member k is not base64url")?;
            let min = match alg {
                Algorithm::HS256 => 32,
                Algorithm::HS384 => 48,
                _ => 64,
            };
            if bytes.len() < min {
                return Err(format!("an {} key needs at least {min} bytes (RFC 7518 §3.2)", alg_name(alg)));
            }
            ("oct", alg, &["k"])
        }
        AlgorithmParameters::RSA(_) => {
            let alg = stated.ok_or("an RSA JWK needs \"alg\" (RS256/384/512 or PS256/384/512)")?;
            if !matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) {
                return Err(format!("alg {} does not fit an RSA key", alg_name(alg)));
            }
            ("RSA", alg, &["d", "p", "q", "dp", "dq", "qi", "oth"])
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let implied = match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err("EC keys must use curve P-256 or P-384".into()),
            };
            if stated.is_some_and(|a| a != implied) {
                return Err(format!("alg does not fit curve (expected {})", alg_name(implied)));
            }
            ("EC", implied, &["d"])
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            if p.curve != EllipticCurve::Ed25519 {
                return Err("OKP keys must use curve Ed25519".into());
            }
            if stated.is_some_and(|a| a != Algorithm::EdDSA) {
                return Err("alg does not fit an Ed25519 key (expected EdDSA)".into());
            }
            ("OKP", Algorithm::EdDSA, &["d"])
        }
        _ => return Err("unsupported kty (use oct, RSA, EC or OKP)".into()),
    };
    DecodingKey::from_jwk(&jwk).map_err(|_| format!("the {kty} key material is not usable"))?;
    let kid = match &jwk.common.key_id {
        Some(k) if !k.is_empty() => k.clone(),
        Some(_) => return Err("kid must not be empty".into()),
        None => jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| "cannot compute the key thumbprint".to_string())?,
    };
    let mut public = jwk_json.clone();
    if let Some(obj) = public.as_object_mut() {
        if kty == "oct" {
            obj.clear(); // a symmetric key has no public half
            obj.insert("kty".into(), "oct".into());
        } else {
            for m in private_members {
                obj.remove(*m);
            }
        }
        obj.insert("kid".into(), kid.clone().into());
        obj.insert("alg".into(), alg_name(alg).into());
    }
    Ok(ParsedJwk { kid, kty, alg, public })
}

/// The verifying half of a stored JWK.
pub fn parse_jwk(jwk_json: &Value) -> Result<VerifyingKey, String> {
    let parsed = describe_jwk(jwk_json)?;
    let jwk: Jwk = serde_json::from_value(jwk_json.clone()).map_err(|e| e.to_string())?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    let signs = parsed.kty == "oct" || jwk_json.get("d").is_some();
    Ok(VerifyingKey { kid: parsed.kid, alg: parsed.alg, decoding, signs })
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn oct_keys_need_alg_and_length() {
        assert!(describe_jwk(&json!({"kty":"oct","k":"c2VjcmV0"})).is_err());
        assert!(describe_jwk(&json!({"kty":"oct","alg":"HS256","k":"c2VjcmV0"})).unwrap_err().contains("32 bytes"));
        let k = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaA";
        let p = describe_jwk(&json!({"kty":"oct","alg":"HS256","k":k})).unwrap();
        assert_eq!(p.alg, Algorithm::HS256);
        assert!(!p.kid.is_empty());
        assert!(p.public.get("k").is_none(), "secret must not be in the public form");
    }

    #[test]
    fn only_keys_with_secret_material_sign() {
        let k = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaA";
        assert!(parse_jwk(&json!({"kty":"oct","alg":"HS256","k":k})).unwrap().signs);
        // A P-256 key (RFC 7515 A.3) with and without its private member d.
        let x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
        let d = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
        assert!(parse_jwk(&json!({"kty":"EC","crv":"P-256","x":x,"y":y,"d":d})).unwrap().signs);
        assert!(!parse_jwk(&json!({"kty":"EC","crv":"P-256","x":x,"y":y})).unwrap().signs);
    }

    #[test]
    fn refuses_mismatched_algorithms() {
        let k = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaA";
        assert!(describe_jwk(&json!({"kty":"oct","alg":"RS256","k":k})).is_err());
        assert!(describe_jwk(&json!({"kty":"oct","alg":"none","k":k})).is_err());
        assert!(describe_jwk(&json!({"kty":"nope"})).is_err());
        assert!(describe_jwk(&json!("string")).is_err());
    }
}
