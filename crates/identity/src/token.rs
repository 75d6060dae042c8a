//! Self-validating tokens, in the spirit of Keystone's Fernet tokens.
//!
//! A token carries who (user), where (project), when (issued, expires) and an
//! audit id, authenticated with HMAC-SHA256 under a key kept in the store. A
//! controller checks it without a database round trip: the MAC proves nuage
//! issued it, and revocation is a lookup in an in-memory set that follows the
//! store. Tokens are not encrypted: they reveal only ids and times, like
//! Keystone's Fernet payloads once decrypted, and keeping them signed-only
//! makes validation about a microsecond.
//!
//! A token traded for another (the `token` method) also carries the audit
//! id of the chain's first token, as Keystone's `audit_ids` do: revoking
//! that first token revokes every token traded from it. Tokens without a
//! chain are 16 bytes shorter and are their own chain.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "nu1_";
const PAYLOAD_LEN: usize = 1 + 16 + 16 + 8 + 8 + 16;
const CHAIN_LEN: usize = 16;
const MAC_LEN: usize = 32;

/// How the token's holder first proved its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password = 1,
    Token = 2,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Token => "token",
        }
    }
}

/// The decoded content of a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub user_id: String,
    pub project_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub audit_id: String,
    /// The audit id of the token this one was traded from, first of its
    /// chain; equal to `audit_id` for a token made from a password.
    pub chain_id: String,
    pub method: Method,
}

/// Signs and checks tokens with one key.
#[derive(Clone)]
pub struct TokenKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

fn hex16(s: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

impl TokenKey {
    pub fn new(key: &[u8]) -> TokenKey {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any size"));
        TokenKey { mac }
    }

    /// Encodes `claims` into a token string. Ids must be 32-hex-digit ids as
    /// nuage makes them; anything else is a programming error reported as
    /// `None`.
    pub fn issue(&self, claims: &Claims) -> Option<String> {
        let mut buf = [0u8; PAYLOAD_LEN + CHAIN_LEN + MAC_LEN];
        buf[0] = claims.method as u8;
        buf[1..17].copy_from_slice(&hex16(&claims.user_id)?);
        buf[17..33].copy_from_slice(&hex16(&claims.project_id)?);
        buf[33..41].copy_from_slice(&claims.issued_at.to_be_bytes());
        buf[41..49].copy_from_slice(&claims.expires_at.to_be_bytes());
        buf[49..65].copy_from_slice(&hex16(&claims.audit_id)?);
        let payload = if claims.chain_id == claims.audit_id {
            PAYLOAD_LEN
        } else {
            buf[PAYLOAD_LEN..PAYLOAD_LEN + CHAIN_LEN].copy_from_slice(&hex16(&claims.chain_id)?);
            PAYLOAD_LEN + CHAIN_LEN
        };
        let mut mac = self.mac.clone();
        mac.update(&buf[..payload]);
        buf[payload..payload + MAC_LEN].copy_from_slice(&mac.finalize().into_bytes());
        Some(format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode(&buf[..payload + MAC_LEN])
        ))
    }

    /// Decodes and authenticates a token. Expiry and revocation are the
    /// caller's to check, against its own clock and revocation list.
    pub fn open(&self, token: &str) -> Option<Claims> {
        let body = token.strip_prefix(PREFIX)?;
        let mut buf = [0u8; PAYLOAD_LEN + CHAIN_LEN + MAC_LEN];
        let payload = [PAYLOAD_LEN, PAYLOAD_LEN + CHAIN_LEN]
            .into_iter()
            .find(|p| body.len() == URL_SAFE_NO_PAD.encode(&buf[..p + MAC_LEN]).len())?;
        let n = URL_SAFE_NO_PAD.decode_slice(body, &mut buf).ok()?;
        if n != payload + MAC_LEN {
            return None;
        }
        let mut mac = self.mac.clone();
        mac.update(&buf[..payload]);
        mac.verify_slice(&buf[payload..payload + MAC_LEN]).ok()?;
        let method = match buf[0] {
            1 => Method::Password,
            2 => Method::Token,
            _ => return None,
        };
        let i64_at = |at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(buf.get(at..at + 8)?.try_into().ok()?))
        };
        Some(Claims {
            method,
            user_id: hex::encode(&buf[1..17]),
            project_id: hex::encode(&buf[17..33]),
            issued_at: i64_at(33)?,
            expires_at: i64_at(41)?,
            audit_id: hex::encode(&buf[49..65]),
            chain_id: hex::encode(
                &buf[if payload > PAYLOAD_LEN {
                    PAYLOAD_LEN..PAYLOAD_LEN + CHAIN_LEN
                } else {
                    49..65
                }],
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            user_id: "0123456789abcdef0123456789abcdef".into(),
            project_id: "fedcba9876543210fedcba9876543210".into(),
            issued_at: 1_700_000_000_000,
            expires_at: 1_700_003_600_000,
            audit_id: "00112233445566778899aabbccddeeff".into(),
            chain_id: "00112233445566778899aabbccddeeff".into(),
            method: Method::Password,
        }
    }

    #[test]
    fn a_traded_token_carries_its_chain() {
        let k = TokenKey::new(b"k1");
        let mut c = claims();
        let plain = k.issue(&c).expect("issue");
        c.method = Method::Token;
        c.chain_id = "ffeeddccbbaa99887766554433221100".into();
        let traded = k.issue(&c).expect("issue");
        assert!(traded.len() > plain.len());
        assert_eq!(k.open(&traded), Some(c.clone()));
        // Cut to the short length, it is no token.
        assert_eq!(k.open(&traded[..plain.len()]), None);
    }

    #[test]
    fn round_trip_and_tamper() {
        let k = TokenKey::new(b"k1");
        let t = k.issue(&claims()).expect("issue");
        assert_eq!(k.open(&t), Some(claims()));
        // Another key does not accept it.
        assert_eq!(TokenKey::new(b"k2").open(&t), None);
        // Any single-character change is refused.
        let mut bytes = t.clone().into_bytes();
        for i in PREFIX.len()..bytes.len() {
            let orig = bytes[i];
            bytes[i] = if orig == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(bytes.clone()).expect("ascii");
            assert_eq!(k.open(&s), None, "tampered at {i}");
            bytes[i] = orig;
        }
        assert_eq!(k.open(""), None);
        assert_eq!(k.open("nu1_"), None);
        assert_eq!(k.open(&t[..t.len() - 1]), None);
    }

    #[test]
    fn refuses_non_hex_ids() {
        let mut c = claims();
        c.user_id = "default".into();
        assert_eq!(TokenKey::new(b"k").issue(&c), None);
    }
}
