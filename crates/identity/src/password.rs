//! Password hashing with argon2id (RFC 9106 parameters as the argon2 crate
//! defaults them: 19 MiB, 2 passes), in PHC string form so parameters can be
//! raised later without breaking stored hashes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::{IdentityError, IdentityResult};

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> IdentityResult<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| IdentityError::Hash)
}

/// True when `password` matches the stored PHC string. A malformed stored
/// hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Refuses passwords too weak to protect anything.
pub fn check_strength(password: &str) -> IdentityResult<()> {
    if password.chars().count() < 8 {
        return Err(IdentityError::invalid(
            "password must have at least 8 characters",
        ));
    }
    if password.len() > 1024 {
        return Err(IdentityError::invalid(
            "password must be at most 1024 bytes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let h = super::hash("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong horse", &h));
        assert!(!super::verify("x", "not a hash"));
    }
}
