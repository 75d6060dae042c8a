//! IMDSv2 session tokens: stateless, so a flood of `PUT /latest/api/token`
//! holds no memory. A token is its expiry and an HMAC-SHA256 of the
//! instance id and that expiry under a key drawn at start: it is valid only
//! for the instance that asked (the MAC is recomputed with the caller's
//! instance, never read from the token) and only until it expires. A
//! restart draws a new key, so tokens do not survive it; clients ask for a
//! new one on a 401, as EC2's SDKs do.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// EC2's bounds on a token's lifetime, in seconds.
pub(crate) const MIN_TTL: u64 = 1;
pub(crate) const MAX_TTL: u64 = 21_600;

const EXPIRY_LEN: usize = 8;
const MAC_LEN: usize = 32;

pub(crate) struct TokenKey([u8; 32]);

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

impl TokenKey {
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        TokenKey(k)
    }

    fn mac(&self, instance: &str, expiry: u64) -> Hmac<Sha256> {
        // A key of any length is accepted by HMAC.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        m.update(instance.as_bytes());
        m.update(&[0]);
        m.update(&expiry.to_be_bytes());
        m
    }

    /// A token for `instance` valid until `expiry` (seconds since the epoch).
    pub fn issue(&self, instance: &str, expiry: u64) -> String {
        let mut raw = Vec::with_capacity(EXPIRY_LEN + MAC_LEN);
        raw.extend_from_slice(&expiry.to_be_bytes());
        raw.extend_from_slice(&self.mac(instance, expiry).finalize().into_bytes());
        b64().encode(raw)
    }

    /// Whether `token` was issued to `instance` and is still valid at `now`.
    pub fn verify(&self, token: &str, instance: &str, now: u64) -> bool {
        if token.len() > 64 {
            return false;
        }
        let Ok(raw) = b64().decode(token.trim()) else {
            return false;
        };
        if raw.len() != EXPIRY_LEN + MAC_LEN {
            return false;
        }
        let (e, tag) = raw.split_at(EXPIRY_LEN);
        let mut eb = [0u8; EXPIRY_LEN];
        eb.copy_from_slice(e);
        let expiry = u64::from_be_bytes(eb);
        expiry > now && self.mac(instance, expiry).verify_slice(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_its_instance_and_its_expiry() {
        let k = TokenKey::random();
        let t = k.issue("i-1", 1_000);
        assert!(k.verify(&t, "i-1", 999));
        assert!(!k.verify(&t, "i-1", 1_000), "expired");
        assert!(!k.verify(&t, "i-2", 999), "another instance");
        assert!(!TokenKey::random().verify(&t, "i-1", 999), "another key");
        let mut forged = b64().decode(&t).expect("b64");
        forged[7] ^= 1; // a later expiry
        assert!(!k.verify(&b64().encode(forged), "i-1", 999));
        assert!(!k.verify("garbage", "i-1", 0));
    }
}
