//! Password hashing with argon2id (RFC 9106 parameters as the argon2 crate
//! defaults them: 19 MiB, 2 passes), in PHC string form so parameters can be
//! raised later without breaking stored hashes.
//!
//! The `_in` functions take the hash's working memory from the caller: the
//! hashing workers ([`crate::hasher`]) keep one 19 MiB block array each and
//! reuse it, instead of allocating (and fragmenting the heap with) a fresh
//! one for every login.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use crate::error::{IdentityError, IdentityResult};

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> IdentityResult<String> {
    hash_in(password, &mut Vec::new())
}

/// True when `password` matches the stored PHC string. A malformed stored
/// hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    verify_in(password, stored, &mut Vec::new())
}

/// The first `n` blocks of `scratch`, grown (never shrunk) to fit.
fn blocks(scratch: &mut Vec<Block>, n: usize) -> &mut [Block] {
    if scratch.len() < n {
        scratch.resize(n, Block::default());
    }
    &mut scratch[..n]
}

/// [`hash`] with the working memory in `scratch`.
pub fn hash_in(password: &str, scratch: &mut Vec<Block>) -> IdentityResult<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_buf)
        .map_err(|_| IdentityError::Hash)?;
    let params = Params::default();
    let n = params.block_count();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::default()
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            blocks(scratch, n),
        )
        .map_err(|_| IdentityError::Hash)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|_| IdentityError::Hash)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|_| IdentityError::Hash)?),
    };
    Ok(phc.to_string())
}

/// [`verify`] with the working memory in `scratch`.
pub fn verify_in(password: &str, stored: &str, scratch: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let n = params.block_count();
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            blocks(scratch, n),
        )
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// A stored-hash stand-in for users that do not exist or have no password:
/// checking a password against it costs one full hash with the real
/// parameters and never matches (its output is random bytes, not a hash), so
/// "no such user" takes as long as "wrong password".
pub fn dummy_hash() -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let out: [u8; Params::DEFAULT_OUTPUT_LEN] = rand::random();
    let params = Params::default();
    match (ParamsString::try_from(&params), Output::new(&out)) {
        (Ok(params), Ok(hash)) => PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params,
            salt: Some(salt.as_salt()),
            hash: Some(hash),
        }
        .to_string(),
        // Unreachable with the default parameters; an empty string still
        // never matches, it only skips the hash's cost.
        _ => String::new(),
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
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn round_trip() {
        let h = super::hash("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong horse", &h));
        assert!(!super::verify("x", "not a hash"));
    }

    /// The reusing functions speak the same PHC form as the argon2 crate's
    /// own hasher, both ways, with one scratch buffer across calls.
    #[test]
    fn compatible_with_the_crate_hasher() {
        let mut scratch = Vec::new();
        let ours = super::hash_in("pw-one-two", &mut scratch).expect("hash");
        let parsed = argon2::PasswordHash::new(&ours).expect("phc");
        assert!(argon2::Argon2::default()
            .verify_password(b"pw-one-two", &parsed)
            .is_ok());
        let salt = argon2::password_hash::SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = argon2::Argon2::default()
            .hash_password(b"pw-three", &salt)
            .expect("hash")
            .to_string();
        assert!(super::verify_in("pw-three", &theirs, &mut scratch));
        assert!(!super::verify_in("pw-four", &theirs, &mut scratch));
        assert_eq!(scratch.len(), argon2::Params::default().block_count());
    }

    #[test]
    fn dummy_never_matches() {
        let d = super::dummy_hash();
        assert!(d.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{d}");
        assert!(!super::verify("", &d));
        assert!(!super::verify("anything", &d));
    }
}
