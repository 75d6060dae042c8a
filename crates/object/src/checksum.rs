//! The checksums an object upload may carry, computed while the bytes stream.
//!
//! S3 clients send one of `x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}`
//! (as a header, or as an aws-chunked trailer) and older ones `Content-MD5`;
//! the engine always computes MD5 (the ETag) and CRC32C (its own integrity
//! check of stored segments), plus whatever algorithm the client named.

use base64::Engine as _;
use crc_fast::CrcAlgorithm;
use md5::Digest as _;

/// An additional checksum algorithm of S3's `x-amz-checksum-*` family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Crc64nvme,
        Algorithm::Sha1,
        Algorithm::Sha256,
    ];

    /// The name in `x-amz-checksum-<name>` (lowercase).
    pub fn header_suffix(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "crc32",
            Algorithm::Crc32c => "crc32c",
            Algorithm::Crc64nvme => "crc64nvme",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
        }
    }

    /// The full header name, `x-amz-checksum-crc32` etc.
    pub fn header_name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// S3's `x-amz-checksum-algorithm` / `x-amz-sdk-checksum-algorithm` value.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.header_suffix().eq_ignore_ascii_case(name))
    }

    /// The algorithm named by a header such as `x-amz-checksum-crc32`.
    pub fn from_header(header: &str) -> Option<Algorithm> {
        let lower = header.to_ascii_lowercase();
        let suffix = lower.strip_prefix("x-amz-checksum-")?;
        Algorithm::from_name(suffix)
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    /// Decodes a base64 value as sent in a header or trailer, checking its length.
    pub fn decode(self, value: &str) -> Option<Vec<u8>> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()?;
        (raw.len() == self.digest_len()).then_some(raw)
    }
}

/// A checksum the client says the body has: verified before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub algorithm: Algorithm,
    /// Raw digest bytes (decoded from base64).
    pub digest: Vec<u8>,
}

/// A running checksum of one algorithm.
#[derive(Clone)]
pub enum Hasher {
    /// CRC32 or CRC32C.
    Crc32(crc_fast::Digest),
    Crc64(crc_fast::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl Hasher {
    pub fn new(a: Algorithm) -> Hasher {
        match a {
            Algorithm::Crc32 => Hasher::Crc32(crc_fast::Digest::new(CrcAlgorithm::Crc32IsoHdlc)),
            Algorithm::Crc32c => Hasher::Crc32(crc_fast::Digest::new(CrcAlgorithm::Crc32Iscsi)),
            Algorithm::Crc64nvme => Hasher::Crc64(crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme)),
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(d) | Hasher::Crc64(d) => d.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// The digest, big-endian for CRCs as S3 encodes them.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc32(d) => (d.finalize() as u32).to_be_bytes().to_vec(),
            Hasher::Crc64(d) => d.finalize().to_be_bytes().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// The CRC32C of `data` continuing `crc` (the CRC32C of what came before
/// it; 0 for nothing): the per-segment integrity check.
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    let mut d = crc_fast::Digest::new_with_init_state(CrcAlgorithm::Crc32Iscsi, u64::from(!crc));
    d.update(data);
    d.finalize() as u32
}

/// Base64, as checksums travel in S3 headers.
pub fn to_base64(digest: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// An MD5 hasher (the ETag of single-part objects and of parts).
pub fn md5() -> crate::fastmd5::Md5 {
    crate::fastmd5::Md5::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(a: Algorithm, data: &[u8]) -> String {
        let mut h = Hasher::new(a);
        h.update(data);
        to_base64(&h.finish())
    }

    /// Values from botocore's checksum tests / AWS documentation for "Hello world".
    #[test]
    fn known_values() {
        assert_eq!(b64(Algorithm::Crc32, b"Hello world"), "i9aeUg==");
        assert_eq!(b64(Algorithm::Crc32c, b"Hello world"), "crUfeA==");
        assert_eq!(
            b64(Algorithm::Sha1, b"Hello world"),
            "e1AsOh9IyGCa4hLN+2Od7jlnP14="
        );
        assert_eq!(
            b64(Algorithm::Sha256, b"Hello world"),
            "ZOyIygCyaOW6GjVnihtTFtIS9PNmskdyMlNKiuyjfzw="
        );
        assert_eq!(b64(Algorithm::Crc64nvme, b"Hello world"), "OOJZ0D8xKts=");
    }

    #[test]
    fn crc32c_continues() {
        assert_eq!(crc32c_append(0, b""), 0);
        assert_eq!(crc32c_append(0, b"123456789"), 0xe306_9283);
        let whole = crc32c_append(0, b"Hello world, hello again");
        assert_eq!(
            crc32c_append(crc32c_append(0, b"Hello world"), b", hello again"),
            whole
        );
    }

    #[test]
    fn names_and_decoding() {
        assert_eq!(
            Algorithm::from_header("X-Amz-Checksum-CRC32"),
            Some(Algorithm::Crc32)
        );
        assert_eq!(Algorithm::from_name("SHA256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_name("md5"), None);
        assert!(Algorithm::Crc32.decode("i9aeUg==").is_some());
        assert!(Algorithm::Crc32
            .decode("ZOyIygCyaOW6GjVnihtTFtIS9PNmskdyMlNKiuyjfzw=")
            .is_none());
        assert!(Algorithm::Crc32.decode("not base64!").is_none());
    }
}
