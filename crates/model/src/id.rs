//! Identifier generation.
//!
//! OpenStack clients expect 32-hex-digit ids for identity objects; EC2 clients
//! expect `prefix-` followed by 17 hex digits (`i-0123456789abcdef0`). Both are
//! random, so ids never reveal creation order or counts to other projects.

use rand::Rng;

/// A Keystone-style id: 32 lowercase hex digits.
pub fn hex32() -> String {
    let v: u128 = rand::thread_rng().gen();
    format!("{v:032x}")
}

/// An EC2-style id such as `i-0a1b2c3d4e5f60718`.
pub fn ec2(prefix: &str) -> String {
    let v: u128 = rand::thread_rng().gen();
    format!("{prefix}-{:017x}", v & ((1u128 << 68) - 1))
}

/// True when `s` looks like an id made by [`hex32`].
pub fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Random bytes encoded for secrets (passwords, EC2 secret keys): 40 chars of
/// an alphabet safe in shells, URLs and env files.
pub fn secret(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// An EC2 access key id: `AKIA` followed by 16 upper-case alphanumerics, as AWS
/// clients validate the shape loosely but humans recognise it.
pub fn access_key_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("AKIA{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(is_hex32(&hex32()));
        let i = ec2("i");
        assert_eq!(i.len(), 19, "{i}");
        assert!(i.starts_with("i-"));
        assert_eq!(access_key_id().len(), 20);
        assert_eq!(secret(40).len(), 40);
        assert!(!is_hex32("ABC"));
    }
}
