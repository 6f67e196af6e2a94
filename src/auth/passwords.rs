//! Password hashing for `auth.sign_up` / `auth.sign_in`: argon2id, PHC strings.
//!
//! Parameters are OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane): about 30–60 ms per
//! hash on one core here, which is the point. Unknown emails are verified against a dummy hash
//! made with the same parameters, so both failure paths cost the same.
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn check_password_rules(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("password must have at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("password must have at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

/// A deliberately plain email check: one @, something on both sides, a dot in the domain,
/// no spaces or control characters. Deliverability is the mail system's business.
pub fn check_email(email: &str) -> Result<(), String> {
    let bad = || Err("email is not a valid address".to_string());
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad();
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(())
        }
        _ => bad(),
    }
}

/// Hash with a fresh random salt; returns the PHC string stored in auth.users.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|_| "no OS randomness".to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Verify `password` against `phc`; with `None` (unknown email) burn the same time and fail.
pub fn verify_password(password: &str, phc: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("no such account, constant-time path").unwrap_or_default());
    let (candidate, real) = match phc {
        Some(p) => (p, true),
        None => (dummy.as_str(), false),
    };
    let ok = PasswordHash::new(candidate)
        .map(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false);
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", Some(&h)));
        assert!(!verify_password("wrong horse battery", Some(&h)));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
    }

    #[test]
    fn unknown_accounts_never_verify() {
        assert!(!verify_password("no such account, constant-time path", None));
        assert!(!verify_password("anything", Some("not a phc string")));
    }

    #[test]
    fn rules() {
        assert!(check_password_rules("short").is_err());
        assert!(check_password_rules("long enough").is_ok());
        assert!(check_email("a@example.com").is_ok());
        for bad in ["", "a", "a@b", "@example.com", "a b@example.com", "a@@example.com", "a@example.com."] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
