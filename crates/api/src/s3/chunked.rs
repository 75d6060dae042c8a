//! aws-chunked request bodies (`Content-Encoding: aws-chunked`), decoded as
//! they stream in.
//!
//! S3 clients send them in three forms, named by `x-amz-content-sha256`:
//!
//! * `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: `<hex size>;chunk-signature=<sig>\r\n
//!   <data>\r\n` ..., ending with an empty chunk. Each signature chains from
//!   the previous one (the first from the request's signature) and is checked
//!   before the chunk's bytes are handed on, so the engine never sees a byte
//!   that was not signed.
//! * `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: the same, then trailing
//!   headers (`x-amz-checksum-crc32:<base64>`) and their signature
//!   (`x-amz-trailer-signature`).
//! * `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: `<hex size>\r\n<data>\r\n` ..., `0\r\n`,
//!   the trailers, `\r\n` (what botocore sends over https). Data is handed on
//!   as it arrives; the checksum trailer is the only integrity check.
//!
//! [`AwsChunked`] wraps the body stream and yields the decoded bytes. It holds
//! at most one chunk (signed modes; bounded by [`Options::max_chunk_size`])
//! plus one frame of input. Every failure is a [`ChunkedError`] that knows the
//! S3 code it is answered with. The stream only ends (`None`) after the whole
//! body, its trailer and its length were verified: a consumer that stores
//! what it reads must commit only then. Fuzzed by
//! `fuzz/fuzz_targets/aws_chunked.rs`.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use nuage_identity::sigv4::{self, Payload, SigV4Auth};
use nuage_object::checksum::{Algorithm, Expected, Hasher};

/// The largest chunk accepted. SDKs send 64 KiB (signed) to 1 MiB (botocore)
/// chunks; a signed chunk is held whole until its signature is checked.
pub const MAX_CHUNK_SIZE: usize = 16 << 20;
/// The longest size or trailer line, CRLF excluded. A signed size line is
/// under 100 bytes; the bound stops a client from making the server buffer
/// an endless line.
pub const MAX_LINE: usize = 4096;
/// Trailing headers accepted after the last chunk (S3 sends one checksum).
const MAX_TRAILERS: usize = 8;
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

// ---------------------------------------------------------------------------
// Errors

/// Why an aws-chunked body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkedError {
    /// Reading the underlying body failed (client gone, body limit hit).
    Body(String),
    /// The body ended in the middle of something.
    Truncated { reading: &'static str },
    /// A size or trailer line runs past [`MAX_LINE`] bytes.
    LineTooLong,
    /// A line ends with a bare LF, or a chunk's data is not followed by CRLF
    /// (the chunk is longer than its size said).
    MissingCrlf { after: &'static str },
    /// The chunk size is not 1 to 16 hex digits.
    BadChunkSize(String),
    /// The chunk is bigger than the decoder accepts.
    ChunkTooLarge { size: u64, max: usize },
    /// A signed upload's size line has no well-formed `chunk-signature`.
    MissingChunkSignature { chunk: u64 },
    /// A chunk's signature is not the one its bytes and the chain give.
    ChunkSignatureMismatch { chunk: u64 },
    /// The signed-trailer upload lacks `x-amz-trailer-signature`.
    MissingTrailerSignature,
    /// The trailer signature is wrong.
    TrailerSignatureMismatch,
    /// A trailer line is not `name:value`, is repeated or was not declared
    /// in `x-amz-trailer`.
    MalformedTrailer(String),
    /// The checksum `x-amz-trailer` announced never came.
    MissingChecksumTrailer(&'static str),
    /// The checksum trailer is not base64 of the algorithm's length.
    InvalidChecksumTrailer(&'static str),
    /// The body's checksum is not the one the trailer gives.
    ChecksumMismatch(&'static str),
    /// Fewer bytes than `x-amz-decoded-content-length`.
    TooShort { declared: u64, got: u64 },
    /// More bytes than `x-amz-decoded-content-length`.
    TooLong { declared: u64 },
    /// Bytes after the end of the encoding.
    TrailingData,
    /// `x-amz-decoded-content-length` is absent.
    MissingDecodedLength,
    /// A request header of the encoding is invalid.
    InvalidHeader { name: &'static str, reason: String },
}

impl ChunkedError {
    /// The S3 error code the handler answers with.
    pub fn s3_code(&self) -> &'static str {
        match self {
            ChunkedError::Body(_)
            | ChunkedError::Truncated { .. }
            | ChunkedError::TooShort { .. } => "IncompleteBody",
            ChunkedError::LineTooLong
            | ChunkedError::MissingCrlf { .. }
            | ChunkedError::BadChunkSize(_)
            | ChunkedError::ChunkTooLarge { .. }
            | ChunkedError::TooLong { .. }
            | ChunkedError::TrailingData
            | ChunkedError::InvalidHeader { .. } => "InvalidArgument",
            ChunkedError::MissingChunkSignature { .. }
            | ChunkedError::ChunkSignatureMismatch { .. }
            | ChunkedError::MissingTrailerSignature
            | ChunkedError::TrailerSignatureMismatch => "SignatureDoesNotMatch",
            ChunkedError::MalformedTrailer(_) => "MalformedTrailerError",
            ChunkedError::MissingChecksumTrailer(_) | ChunkedError::ChecksumMismatch(_) => {
                "BadDigest"
            }
            ChunkedError::InvalidChecksumTrailer(_) => "InvalidRequest",
            ChunkedError::MissingDecodedLength => "MissingContentLength",
        }
    }

    /// The HTTP status that goes with [`ChunkedError::s3_code`].
    pub fn http_status(&self) -> u16 {
        match self.s3_code() {
            "SignatureDoesNotMatch" => 403,
            "MissingContentLength" => 411,
            _ => 400,
        }
    }
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkedError::Body(e) => write!(f, "reading the request body failed: {e}"),
            ChunkedError::Truncated { reading } => {
                write!(f, "the aws-chunked body ended while reading {reading}")
            }
            ChunkedError::LineTooLong => write!(
                f,
                "an aws-chunked size or trailer line is longer than {MAX_LINE} bytes"
            ),
            ChunkedError::MissingCrlf { after } => {
                write!(f, "the aws-chunked body lacks the CRLF after {after}")
            }
            ChunkedError::BadChunkSize(line) => {
                write!(f, "the aws-chunked size line {line:?} is malformed")
            }
            ChunkedError::ChunkTooLarge { size, max } => write!(
                f,
                "an aws-chunked chunk of {size} bytes is larger than the {max} accepted"
            ),
            ChunkedError::MissingChunkSignature { chunk } => write!(
                f,
                "chunk {chunk} of the signed aws-chunked body has no valid chunk-signature"
            ),
            ChunkedError::ChunkSignatureMismatch { chunk } => write!(
                f,
                "the signature of chunk {chunk} does not match what was calculated; check the signing key and the chunk data"
            ),
            ChunkedError::MissingTrailerSignature => {
                write!(f, "the signed trailer lacks its x-amz-trailer-signature")
            }
            ChunkedError::TrailerSignatureMismatch => write!(
                f,
                "the trailer signature does not match what was calculated"
            ),
            ChunkedError::MalformedTrailer(why) => {
                write!(f, "the aws-chunked trailer is malformed: {why}")
            }
            ChunkedError::MissingChecksumTrailer(name) => write!(
                f,
                "x-amz-trailer announced {name} but the body has no such trailer"
            ),
            ChunkedError::InvalidChecksumTrailer(name) => {
                write!(f, "the value of the {name} trailer is not a valid checksum")
            }
            ChunkedError::ChecksumMismatch(name) => write!(
                f,
                "the {name} you specified did not match the calculated checksum"
            ),
            ChunkedError::TooShort { declared, got } => write!(
                f,
                "the body has {got} bytes, fewer than the {declared} of x-amz-decoded-content-length"
            ),
            ChunkedError::TooLong { declared } => write!(
                f,
                "the body has more than the {declared} bytes of x-amz-decoded-content-length"
            ),
            ChunkedError::TrailingData => {
                write!(f, "bytes follow the end of the aws-chunked body")
            }
            ChunkedError::MissingDecodedLength => write!(
                f,
                "an aws-chunked upload needs the x-amz-decoded-content-length header"
            ),
            ChunkedError::InvalidHeader { name, reason } => write!(f, "{name}: {reason}"),
        }
    }
}

impl std::error::Error for ChunkedError {}

// ---------------------------------------------------------------------------
// Options

/// What a signed upload's chunk signatures chain from. The signing key is
/// derived once per request, not once per chunk.
#[derive(Clone)]
pub struct ChunkSigning {
    key: [u8; 32],
    amz_date: String,
    scope: String,
    /// The seed (the request's signature), then each verified chunk's.
    previous: String,
}

impl fmt::Debug for ChunkSigning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigning")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .field("previous", &self.previous)
            .finish_non_exhaustive()
    }
}

impl ChunkSigning {
    /// For a request whose header signature [`sigv4::verify`] accepted with `secret`.
    pub fn new(auth: &SigV4Auth, secret: &str) -> ChunkSigning {
        let c = &auth.credential;
        ChunkSigning::from_parts(
            sigv4::signing_key(secret, &c.date, &c.region, &c.service),
            &auth.amz_date,
            &auth.scope(),
            &auth.signature,
        )
    }

    /// From a signing key ([`sigv4::signing_key`]), the request's
    /// `x-amz-date`, its scope ([`SigV4Auth::scope`]) and its signature.
    pub fn from_parts(
        key: [u8; 32],
        amz_date: &str,
        scope: &str,
        seed_signature: &str,
    ) -> ChunkSigning {
        ChunkSigning {
            key,
            amz_date: amz_date.to_owned(),
            scope: scope.to_owned(),
            previous: seed_signature.to_ascii_lowercase(),
        }
    }

    /// Checks one chunk against its claimed signature and advances the chain.
    fn verify_chunk(&mut self, data: &[u8], claimed: &str) -> bool {
        let expected =
            sigv4::chunk_signature(&self.key, &self.amz_date, &self.scope, &self.previous, data);
        let ok = constant_time_eq(expected.as_bytes(), claimed.as_bytes());
        if ok {
            self.previous = expected;
        }
        ok
    }

    /// The trailer's signature ([`sigv4::trailer_signature`]), chained
    /// from the empty chunk's.
    fn trailer_signature(&self, canonical: &[u8]) -> String {
        sigv4::trailer_signature(
            &self.key,
            &self.amz_date,
            &self.scope,
            &self.previous,
            canonical,
        )
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which of the three encodings the body uses.
#[derive(Debug, Clone)]
pub enum Mode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`
    Signed(ChunkSigning),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`
    SignedTrailer(ChunkSigning),
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`
    UnsignedTrailer,
}

/// How to decode one request's body.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// The checksum `x-amz-trailer` announces; the decoder computes it over
    /// the decoded bytes and compares it with the trailer.
    pub trailer: Option<Algorithm>,
    /// `x-amz-decoded-content-length`; `None` skips the check.
    pub decoded_length: Option<u64>,
    pub max_chunk_size: usize,
}

impl Options {
    pub fn new(mode: Mode) -> Options {
        Options {
            mode,
            trailer: None,
            decoded_length: None,
            max_chunk_size: MAX_CHUNK_SIZE,
        }
    }

    /// The options of a SigV4-authenticated request, `None` when its body is
    /// not aws-chunked (the payload hash is not one of the `STREAMING-*`
    /// values). `secret` is the one [`sigv4::verify`] accepted.
    pub fn from_request(
        auth: &SigV4Auth,
        secret: &str,
        headers: &http::HeaderMap,
    ) -> Result<Option<Options>, ChunkedError> {
        let mode = match auth.payload() {
            Payload::StreamingSigned => Mode::Signed(ChunkSigning::new(auth, secret)),
            Payload::StreamingSignedTrailer => Mode::SignedTrailer(ChunkSigning::new(auth, secret)),
            Payload::StreamingUnsignedTrailer => Mode::UnsignedTrailer,
            Payload::Unsigned | Payload::Sha256(_) => return Ok(None),
        };
        Options::from_headers(mode, headers).map(Some)
    }

    /// Reads `x-amz-decoded-content-length` (required) and `x-amz-trailer`.
    pub fn from_headers(mode: Mode, headers: &http::HeaderMap) -> Result<Options, ChunkedError> {
        let mut options = Options::new(mode);
        let length = headers
            .get("x-amz-decoded-content-length")
            .ok_or(ChunkedError::MissingDecodedLength)?;
        let invalid_length = || ChunkedError::InvalidHeader {
            name: "x-amz-decoded-content-length",
            reason: "not a byte count".into(),
        };
        let length = length.to_str().map_err(|_| invalid_length())?;
        if length.is_empty() || !length.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid_length());
        }
        options.decoded_length = Some(length.parse().map_err(|_| invalid_length())?);

        let mut trailers = headers.get_all("x-amz-trailer").iter();
        if let Some(value) = trailers.next() {
            if trailers.next().is_some() {
                return Err(ChunkedError::InvalidHeader {
                    name: "x-amz-trailer",
                    reason: "given more than once".into(),
                });
            }
            let name = value.to_str().map_err(|_| ChunkedError::InvalidHeader {
                name: "x-amz-trailer",
                reason: "not ASCII".into(),
            })?;
            if matches!(options.mode, Mode::Signed(_)) {
                return Err(ChunkedError::InvalidHeader {
                    name: "x-amz-trailer",
                    reason: "a trailer needs x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or STREAMING-UNSIGNED-PAYLOAD-TRAILER".into(),
                });
            }
            let algorithm =
                Algorithm::from_header(name.trim()).ok_or_else(|| ChunkedError::InvalidHeader {
                    name: "x-amz-trailer",
                    reason: format!(
                        "{name:?} is not supported; send one of x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256"
                    ),
                })?;
            options.trailer = Some(algorithm);
        }
        Ok(options)
    }
}

// ---------------------------------------------------------------------------
// The decoder

/// Where the decoder puts the trailer checksum once it has verified it, for
/// the engine to store with the object. Cloned from [`AwsChunked`] before
/// the stream is handed away; read after the stream ended.
#[derive(Debug, Clone, Default)]
pub struct VerifiedTrailer(Arc<Mutex<Option<Expected>>>);

impl VerifiedTrailer {
    /// The verified checksum; `None` before the end of the body, or when no
    /// trailer was announced.
    pub fn get(&self) -> Option<Expected> {
        match self.0.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, value: Expected) {
        match self.0.lock() {
            Ok(mut guard) => *guard = Some(value),
            Err(poisoned) => *poisoned.into_inner() = Some(value),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting `<hex size>[;...]\r\n`.
    SizeLine,
    /// Inside a chunk's data (`remaining` still to come).
    Data {
        remaining: usize,
    },
    /// Expecting the CRLF that closes a chunk's data.
    DataEnd,
    /// After the empty chunk of a body without trailers: its CRLF.
    FinalCrlf,
    /// Reading trailer lines up to an empty line.
    Trailers,
    /// Everything was read; only the end of the input may follow.
    Drain,
    Done,
    Failed,
}

/// Trailer lines read so far.
#[derive(Debug, Default)]
struct Trailers {
    lines: usize,
    /// `name:value\n` per line, the input of the trailer signature.
    canonical: Vec<u8>,
    checksum: Option<String>,
    signature: Option<String>,
    skipped_blank: bool,
}

enum Step {
    Emit(Bytes),
    Continue,
    NeedInput,
    Finished,
}

/// The decoding stream: yields the decoded data of an aws-chunked body. See
/// the module documentation for the guarantees.
pub struct AwsChunked<S> {
    inner: Pin<Box<S>>,
    buf: BytesMut,
    eof: bool,
    state: State,
    signing: Option<ChunkSigning>,
    has_trailer: bool,
    signed_trailer: bool,
    trailer: Option<Algorithm>,
    hasher: Option<Hasher>,
    declared: Option<u64>,
    decoded: u64,
    max_chunk: usize,
    chunks: u64,
    /// The signature claimed by the current signed chunk's size line.
    claimed: Option<String>,
    trailers: Trailers,
    verified: VerifiedTrailer,
}

impl<S> fmt::Debug for AwsChunked<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsChunked")
            .field("state", &self.state)
            .field("decoded", &self.decoded)
            .field("declared", &self.declared)
            .finish_non_exhaustive()
    }
}

impl<S> AwsChunked<S> {
    pub fn new(inner: S, options: Options) -> AwsChunked<S> {
        let (signing, has_trailer, signed_trailer) = match options.mode {
            Mode::Signed(s) => (Some(s), false, false),
            Mode::SignedTrailer(s) => (Some(s), true, true),
            Mode::UnsignedTrailer => (None, true, false),
        };
        AwsChunked {
            inner: Box::pin(inner),
            buf: BytesMut::new(),
            eof: false,
            state: State::SizeLine,
            signing,
            has_trailer,
            signed_trailer,
            trailer: options.trailer,
            hasher: options.trailer.map(Hasher::new),
            declared: options.decoded_length,
            decoded: 0,
            max_chunk: options.max_chunk_size,
            chunks: 0,
            claimed: None,
            trailers: Trailers::default(),
            verified: VerifiedTrailer::default(),
        }
    }

    /// A handle on the trailer checksum, set when the stream ends well.
    pub fn verified_trailer(&self) -> VerifiedTrailer {
        self.verified.clone()
    }

    /// Decoded bytes handed on so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// Takes one CRLF-terminated line (without its CRLF) from the buffer.
    fn take_line(&mut self, reading: &'static str) -> Result<Option<BytesMut>, ChunkedError> {
        let window = &self.buf[..self.buf.len().min(MAX_LINE + 2)];
        match window.iter().position(|&b| b == b'\n') {
            Some(end) => {
                if end == 0 || self.buf[end - 1] != b'\r' {
                    return Err(ChunkedError::MissingCrlf { after: reading });
                }
                let mut line = self.buf.split_to(end + 1);
                line.truncate(end - 1);
                Ok(Some(line))
            }
            None if self.buf.len() > MAX_LINE + 1 => Err(ChunkedError::LineTooLong),
            None if self.eof => Err(ChunkedError::Truncated { reading }),
            None => Ok(None),
        }
    }

    fn step(&mut self) -> Result<Step, ChunkedError> {
        match self.state {
            State::SizeLine => {
                let Some(line) = self.take_line("a chunk size line")? else {
                    return Ok(Step::NeedInput);
                };
                self.size_line(&line)?;
                Ok(Step::Continue)
            }
            State::Data { remaining } => self.data(remaining),
            State::DataEnd => {
                if self.buf.len() < 2 {
                    return self.need("the CRLF after a chunk");
                }
                if &self.buf[..2] != b"\r\n" {
                    return Err(ChunkedError::MissingCrlf {
                        after: "a chunk's data",
                    });
                }
                let _ = self.buf.split_to(2);
                self.state = State::SizeLine;
                Ok(Step::Continue)
            }
            State::FinalCrlf => {
                // Clients end with CRLF; a body that stops right after the
                // (signed) empty chunk lacks nothing that was signed.
                if self.buf.is_empty() && self.eof {
                    self.state = State::Drain;
                    return Ok(Step::Continue);
                }
                if self.buf.len() < 2 {
                    return self.need("the CRLF after the last chunk");
                }
                if &self.buf[..2] != b"\r\n" {
                    return Err(ChunkedError::TrailingData);
                }
                let _ = self.buf.split_to(2);
                self.state = State::Drain;
                Ok(Step::Continue)
            }
            State::Trailers => {
                if self.buf.is_empty() && self.eof {
                    // The final empty line is missing: be lenient, as the
                    // trailers read are complete lines (and a missing
                    // checksum or signature is reported as such).
                    self.finish_trailers()?;
                    return Ok(Step::Continue);
                }
                let Some(line) = self.take_line("a trailer line")? else {
                    return Ok(Step::NeedInput);
                };
                self.trailer_line(&line)?;
                Ok(Step::Continue)
            }
            State::Drain => {
                if !self.buf.is_empty() {
                    return Err(ChunkedError::TrailingData);
                }
                if self.eof {
                    self.state = State::Done;
                    return Ok(Step::Finished);
                }
                Ok(Step::NeedInput)
            }
            State::Done | State::Failed => Ok(Step::Finished),
        }
    }

    fn need(&self, reading: &'static str) -> Result<Step, ChunkedError> {
        if self.eof {
            Err(ChunkedError::Truncated { reading })
        } else {
            Ok(Step::NeedInput)
        }
    }

    fn size_line(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        let shown = || String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
        let (size, extension) = match line.iter().position(|&b| b == b';') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(ChunkedError::BadChunkSize(shown()));
        }
        let size = size
            .iter()
            .try_fold(0u64, |acc, &b| {
                let digit = (b as char).to_digit(16)?;
                acc.checked_mul(16)?.checked_add(u64::from(digit))
            })
            .ok_or_else(|| ChunkedError::BadChunkSize(shown()))?;
        self.chunks += 1;
        if self.signing.is_some() {
            let signature = extension
                .and_then(|e| e.strip_prefix(b"chunk-signature="))
                .filter(|s| s.len() == 64 && s.iter().all(u8::is_ascii_hexdigit))
                .ok_or(ChunkedError::MissingChunkSignature { chunk: self.chunks })?;
            self.claimed = Some(String::from_utf8_lossy(signature).to_ascii_lowercase());
        } else if let Some(extension) = extension {
            // Unsigned: extensions are allowed and ignored, but must be text.
            if extension
                .iter()
                .any(|&b| b.is_ascii_control() && b != b'\t')
            {
                return Err(ChunkedError::BadChunkSize(shown()));
            }
        }
        let size_usize = usize::try_from(size).unwrap_or(usize::MAX);
        if size_usize > self.max_chunk {
            return Err(ChunkedError::ChunkTooLarge {
                size,
                max: self.max_chunk,
            });
        }
        if let Some(declared) = self.declared {
            let total = self.decoded.saturating_add(size);
            if total > declared {
                return Err(ChunkedError::TooLong { declared });
            }
            if size == 0 && total < declared {
                return Err(ChunkedError::TooShort {
                    declared,
                    got: total,
                });
            }
        }
        self.state = State::Data {
            remaining: size_usize,
        };
        Ok(())
    }

    fn data(&mut self, remaining: usize) -> Result<Step, ChunkedError> {
        if self.signing.is_some() {
            // The whole chunk must be here before its signature can be checked.
            if self.buf.len() < remaining {
                return self.need("a chunk's data");
            }
            let data = self.buf.split_to(remaining).freeze();
            let claimed = self.claimed.take().unwrap_or_default();
            let chunk = self.chunks;
            let ok = self
                .signing
                .as_mut()
                .is_some_and(|s| s.verify_chunk(&data, &claimed));
            if !ok {
                return Err(ChunkedError::ChunkSignatureMismatch { chunk });
            }
            return Ok(self.emit(data, remaining, remaining));
        }
        if remaining == 0 {
            return Ok(self.emit(Bytes::new(), 0, 0));
        }
        if self.buf.is_empty() {
            return self.need("a chunk's data");
        }
        let n = remaining.min(self.buf.len());
        let data = self.buf.split_to(n).freeze();
        Ok(self.emit(data, remaining, n))
    }

    /// Hands `data` (`n` of the chunk's `remaining` bytes) on and moves to
    /// what follows.
    fn emit(&mut self, data: Bytes, remaining: usize, n: usize) -> Step {
        if let Some(h) = self.hasher.as_mut() {
            h.update(&data);
        }
        self.decoded += n as u64;
        let last_chunk = remaining == 0;
        self.state = if remaining > n {
            State::Data {
                remaining: remaining - n,
            }
        } else if !last_chunk {
            State::DataEnd
        } else if self.has_trailer {
            State::Trailers
        } else {
            State::FinalCrlf
        };
        if data.is_empty() {
            Step::Continue
        } else {
            Step::Emit(data)
        }
    }

    fn trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        let t = &mut self.trailers;
        if line.is_empty() {
            let expecting = self.trailer.is_some() || self.signed_trailer;
            if t.lines == 0 && expecting && !t.skipped_blank {
                // Some encoders put the empty chunk's CRLF before the trailers.
                t.skipped_blank = true;
                return Ok(());
            }
            return self.finish_trailers();
        }
        if t.signature.is_some() {
            return Err(ChunkedError::MalformedTrailer(
                "a trailer follows x-amz-trailer-signature".into(),
            ));
        }
        t.lines += 1;
        if t.lines > MAX_TRAILERS + 1 {
            return Err(ChunkedError::MalformedTrailer("too many trailers".into()));
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| ChunkedError::MalformedTrailer("a trailer is not UTF-8".into()))?;
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| ChunkedError::MalformedTrailer("a trailer line lacks ':'".into()))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ChunkedError::MalformedTrailer(format!(
                "{name:?} is not a header name"
            )));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ChunkedError::MalformedTrailer(format!(
                "the value of {name} holds control characters"
            )));
        }
        if name == TRAILER_SIGNATURE {
            if !self.signed_trailer {
                return Err(ChunkedError::MalformedTrailer(
                    "x-amz-trailer-signature in an unsigned upload".into(),
                ));
            }
            t.signature = Some(value.to_ascii_lowercase());
            return Ok(());
        }
        match self.trailer {
            Some(a) if a.header_name() == name => {}
            _ => {
                return Err(ChunkedError::MalformedTrailer(format!(
                    "{name} was not announced in x-amz-trailer"
                )))
            }
        }
        if t.checksum.is_some() {
            return Err(ChunkedError::MalformedTrailer(format!(
                "{name} is given twice"
            )));
        }
        t.canonical.extend_from_slice(name.as_bytes());
        t.canonical.push(b':');
        t.canonical.extend_from_slice(value.as_bytes());
        t.canonical.push(b'\n');
        t.checksum = Some(value.to_owned());
        Ok(())
    }

    /// Verifies the trailer's signature, then its checksum, in that order: a
    /// forged trailer is an authentication failure before it is a bad digest.
    fn finish_trailers(&mut self) -> Result<(), ChunkedError> {
        if self.signed_trailer {
            let claimed = self
                .trailers
                .signature
                .as_deref()
                .ok_or(ChunkedError::MissingTrailerSignature)?;
            let expected = self
                .signing
                .as_ref()
                .map(|s| s.trailer_signature(&self.trailers.canonical))
                .unwrap_or_default();
            if !constant_time_eq(expected.as_bytes(), claimed.as_bytes()) {
                return Err(ChunkedError::TrailerSignatureMismatch);
            }
        }
        if let Some(algorithm) = self.trailer {
            let name = algorithm.header_name();
            let value = self
                .trailers
                .checksum
                .as_deref()
                .ok_or(ChunkedError::MissingChecksumTrailer(name))?;
            let claimed = algorithm
                .decode(value)
                .ok_or(ChunkedError::InvalidChecksumTrailer(name))?;
            let computed = self.hasher.take().map(Hasher::finish).unwrap_or_default();
            if !constant_time_eq(&computed, &claimed) {
                return Err(ChunkedError::ChecksumMismatch(name));
            }
            self.verified.set(Expected {
                algorithm,
                digest: claimed,
            });
        }
        self.state = State::Drain;
        Ok(())
    }
}

impl<S, E> Stream for AwsChunked<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: fmt::Display,
{
    type Item = Result<Bytes, ChunkedError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.step() {
                Ok(Step::Emit(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(Step::Continue) => continue,
                Ok(Step::Finished) => return Poll::Ready(None),
                Ok(Step::NeedInput) if this.eof => {
                    // Every state turns a missing byte at the end into an
                    // error; this only guards against looping forever.
                    this.state = State::Failed;
                    return Poll::Ready(Some(Err(ChunkedError::Truncated {
                        reading: "the body",
                    })));
                }
                Ok(Step::NeedInput) => match this.inner.as_mut().poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(frame))) => this.buf.extend_from_slice(&frame),
                    Poll::Ready(Some(Err(e))) => {
                        this.state = State::Failed;
                        return Poll::Ready(Some(Err(ChunkedError::Body(e.to_string()))));
                    }
                    Poll::Ready(None) => this.eof = true,
                },
                Err(e) => {
                    this.state = State::Failed;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20130524T000000Z";
    const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";

    fn key() -> [u8; 32] {
        sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3")
    }

    fn signing(seed: &str) -> ChunkSigning {
        ChunkSigning::from_parts(key(), DATE, SCOPE, seed)
    }

    /// Feeds `body` cut at `cuts` (sorted offsets) and collects the result.
    async fn decode_split(
        body: &[u8],
        cuts: &[usize],
        options: Options,
    ) -> (Result<Vec<u8>, ChunkedError>, VerifiedTrailer) {
        let mut frames: Vec<Result<Bytes, std::io::Error>> = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
            let cut = cut.clamp(start, body.len());
            frames.push(Ok(Bytes::copy_from_slice(&body[start..cut])));
            start = cut;
        }
        let mut stream = AwsChunked::new(futures_util::stream::iter(frames), options);
        let handle = stream.verified_trailer();
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(data) => out.extend_from_slice(&data),
                Err(e) => {
                    // After an error the stream ends.
                    assert!(stream.next().await.is_none());
                    return (Err(e), handle);
                }
            }
        }
        (Ok(out), handle)
    }

    async fn decode(body: &[u8], options: Options) -> Result<Vec<u8>, ChunkedError> {
        decode_split(body, &[], options).await.0
    }

    // -- AWS's "Example: PUT Object" (sigv4-streaming) ----------------------

    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const SIG1: &str = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
    const SIG2: &str = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
    const SIG3: &str = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";

    fn aws_example() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(format!("10000;chunk-signature={SIG1}\r\n").as_bytes());
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(format!("\r\n400;chunk-signature={SIG2}\r\n").as_bytes());
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(format!("\r\n0;chunk-signature={SIG3}\r\n\r\n").as_bytes());
        body
    }

    fn signed_options(length: u64) -> Options {
        let mut o = Options::new(Mode::Signed(signing(SEED)));
        o.decoded_length = Some(length);
        o
    }

    #[test]
    fn signatures_match_aws_example() {
        let k = key();
        let s1 = sigv4::chunk_signature(&k, DATE, SCOPE, SEED, &[b'a'; 65536]);
        assert_eq!(s1, SIG1);
        let s2 = sigv4::chunk_signature(&k, DATE, SCOPE, &s1, &[b'a'; 1024]);
        assert_eq!(s2, SIG2);
        assert_eq!(sigv4::chunk_signature(&k, DATE, SCOPE, &s2, b""), SIG3);
    }

    #[tokio::test]
    async fn aws_example_decodes_in_one_piece_and_at_awkward_cuts() {
        let body = aws_example();
        let (out, _) = decode_split(&body, &[], signed_options(66560)).await;
        assert_eq!(out.as_ref().map(Vec::len), Ok(66560));
        assert!(out.unwrap_or_default().iter().all(|&b| b == b'a'));

        // Cut around every structural boundary: inside the size lines, at
        // the data edges, between CR and LF, in the final CRLF.
        let header1 = 5 + 17 + 64 + 2;
        let data1_end = header1 + 65536;
        let header2_end = data1_end + 2 + 3 + 17 + 64 + 2;
        let data2_end = header2_end + 1024;
        let mut points: Vec<usize> = (0..header1 + 3).collect();
        for edge in [data1_end, header2_end, data2_end, body.len()] {
            points.extend(edge.saturating_sub(4)..(edge + 4).min(body.len()));
        }
        for &cut in &points {
            let (out, _) = decode_split(&body, &[cut], signed_options(66560)).await;
            assert_eq!(out.map(|o| o.len()), Ok(66560), "cut at {cut}");
        }
        // Two cuts at once.
        for &a in points.iter().step_by(7) {
            for &b in points.iter().step_by(5).filter(|&&b| b > a) {
                let (out, _) = decode_split(&body, &[a, b], signed_options(66560)).await;
                assert_eq!(out.map(|o| o.len()), Ok(66560), "cuts at {a}, {b}");
            }
        }
    }

    #[tokio::test]
    async fn aws_example_in_one_byte_pieces() {
        let body = aws_example();
        let cuts: Vec<usize> = (1..body.len()).collect();
        let (out, _) = decode_split(&body, &cuts, signed_options(66560)).await;
        assert_eq!(out.map(|o| o.len()), Ok(66560));
    }

    #[tokio::test]
    async fn tampered_chunks_are_refused() {
        // One flipped data byte in the second chunk.
        let mut body = aws_example();
        let at = body.len() - 200;
        body[at] = b'b';
        assert_eq!(
            decode(&body, signed_options(66560)).await,
            Err(ChunkedError::ChunkSignatureMismatch { chunk: 2 })
        );
        // A wrong signature on the first chunk: nothing is handed on.
        let body = aws_example();
        let text = String::from_utf8_lossy(&body).replacen(SIG1, SIG2, 1);
        let mut stream = AwsChunked::new(
            futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(text))]),
            signed_options(66560),
        );
        let first = stream.next().await;
        let err = first.and_then(Result::err);
        assert_eq!(err, Some(ChunkedError::ChunkSignatureMismatch { chunk: 1 }));
        assert_eq!(
            err.map(|e| (e.s3_code(), e.http_status())),
            Some(("SignatureDoesNotMatch", 403))
        );
        // The final chunk's signature matters too.
        let text = String::from_utf8_lossy(&aws_example()).replacen(SIG3, SIG1, 1);
        assert_eq!(
            decode(text.as_bytes(), signed_options(66560)).await,
            Err(ChunkedError::ChunkSignatureMismatch { chunk: 3 })
        );
        // Chunks swapped or replayed break the chain.
        let mut replay = Vec::new();
        replay.extend_from_slice(format!("400;chunk-signature={SIG2}\r\n").as_bytes());
        replay.extend_from_slice(&[b'a'; 1024]);
        replay.extend_from_slice(format!("\r\n0;chunk-signature={SIG3}\r\n\r\n").as_bytes());
        assert_eq!(
            decode(&replay, signed_options(1024)).await,
            Err(ChunkedError::ChunkSignatureMismatch { chunk: 1 })
        );
        // No signature at all.
        assert_eq!(
            decode(b"3\r\nabc\r\n0\r\n\r\n", signed_options(3)).await,
            Err(ChunkedError::MissingChunkSignature { chunk: 1 })
        );
    }

    #[tokio::test]
    async fn truncated_and_misframed_bodies() {
        let body = aws_example();
        for cut in [0, 10, 89, 1000, 65536 + 89, 65536 + 90, body.len() - 3] {
            let r = decode(&body[..cut], signed_options(66560)).await;
            let code = r.as_ref().err().map(ChunkedError::s3_code);
            assert_eq!(code, Some("IncompleteBody"), "cut at {cut}: {r:?}");
        }
        // Ending right after the signed empty chunk (no final CRLF) is fine.
        assert_eq!(
            decode(&body[..body.len() - 2], signed_options(66560))
                .await
                .map(|o| o.len()),
            Ok(66560)
        );
        // Data longer than its size: the CRLF is not where it must be.
        let mut long = aws_example();
        long.insert(88 + 65536, b'a');
        assert_eq!(
            decode(&long, signed_options(66560)).await,
            Err(ChunkedError::MissingCrlf {
                after: "a chunk's data"
            })
        );
        // Garbage after the end.
        let mut extra = aws_example();
        extra.extend_from_slice(b"x");
        assert_eq!(
            decode(&extra, signed_options(66560)).await,
            Err(ChunkedError::TrailingData)
        );

        let unsigned = |length| {
            let mut o = Options::new(Mode::UnsignedTrailer);
            o.decoded_length = Some(length);
            o
        };
        for (body, expected) in [
            (
                &b"zz\r\nabc\r\n"[..],
                ChunkedError::BadChunkSize("zz".into()),
            ),
            (b"\r\n", ChunkedError::BadChunkSize("".into())),
            (b" 3\r\nabc\r\n", ChunkedError::BadChunkSize(" 3".into())),
            (
                b"3\nabc",
                ChunkedError::MissingCrlf {
                    after: "a chunk size line",
                },
            ),
            (
                b"3\r\nabc\n0\r\n\r\n",
                ChunkedError::MissingCrlf {
                    after: "a chunk's data",
                },
            ),
            (
                b"3\r\nabcd\r\n",
                ChunkedError::MissingCrlf {
                    after: "a chunk's data",
                },
            ),
            (
                b"11111111111111111\r\n",
                ChunkedError::BadChunkSize("11111111111111111".into()),
            ),
            (
                b"1000001\r\n",
                ChunkedError::ChunkTooLarge {
                    size: 0x1000001,
                    max: MAX_CHUNK_SIZE,
                },
            ),
            (b"4\r\nabcd\r\n", ChunkedError::TooLong { declared: 3 }),
            (
                b"2\r\nab\r\n0\r\n\r\n",
                ChunkedError::TooShort {
                    declared: 3,
                    got: 2,
                },
            ),
        ] {
            assert_eq!(
                decode(body, unsigned(3)).await,
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let endless = vec![b'1'; MAX_LINE + 10];
        assert_eq!(
            decode(&endless, unsigned(3)).await,
            Err(ChunkedError::LineTooLong)
        );
        // A failing transport is reported as such.
        let frames = [Ok(Bytes::from_static(b"3\r\na")), Err("connection reset")];
        let mut s = AwsChunked::new(futures_util::stream::iter(frames), unsigned(3));
        assert_eq!(s.next().await, Some(Ok(Bytes::from_static(b"a"))));
        assert_eq!(
            s.next().await,
            Some(Err(ChunkedError::Body("connection reset".into())))
        );
        assert_eq!(s.next().await, None);
    }

    // -- STREAMING-UNSIGNED-PAYLOAD-TRAILER ---------------------------------

    fn crc32_b64(data: &[u8]) -> String {
        let mut h = Hasher::new(Algorithm::Crc32);
        h.update(data);
        nuage_object::checksum::to_base64(&h.finish())
    }

    fn unsigned_trailer_options(length: u64) -> Options {
        let mut o = Options::new(Mode::UnsignedTrailer);
        o.decoded_length = Some(length);
        o.trailer = Some(Algorithm::Crc32);
        o
    }

    /// As botocore's AwsChunkedWrapper writes it.
    fn botocore_body(payload: &[u8], chunk: usize, checksum: &str) -> Vec<u8> {
        let mut body = Vec::new();
        for c in payload.chunks(chunk) {
            body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            body.extend_from_slice(c);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{checksum}\r\n\r\n").as_bytes());
        body
    }

    #[tokio::test]
    async fn unsigned_trailer_right_and_wrong() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let body = botocore_body(&payload, 1024, &crc32_b64(&payload));
        let cuts: Vec<usize> = (1..body.len()).step_by(3).collect();
        for cuts in [&[][..], &cuts[..], &[1, 2, 3, 1030, 1031, 1032][..]] {
            let (out, handle) = decode_split(&body, cuts, unsigned_trailer_options(5000)).await;
            assert_eq!(out.as_ref(), Ok(&payload));
            let verified = handle.get();
            assert_eq!(
                verified.as_ref().map(|e| e.algorithm),
                Some(Algorithm::Crc32)
            );
            assert_eq!(
                verified.map(|e| nuage_object::checksum::to_base64(&e.digest)),
                Some(crc32_b64(&payload))
            );
        }

        let wrong = botocore_body(&payload, 1024, &crc32_b64(b"other"));
        let (out, handle) = decode_split(&wrong, &[], unsigned_trailer_options(5000)).await;
        let err = out.err();
        assert_eq!(
            err,
            Some(ChunkedError::ChecksumMismatch("x-amz-checksum-crc32"))
        );
        assert_eq!(err.map(|e| e.s3_code()), Some("BadDigest"));
        assert_eq!(handle.get(), None);

        let garbled = botocore_body(&payload, 1024, "not-base64!");
        assert_eq!(
            decode(&garbled, unsigned_trailer_options(5000)).await,
            Err(ChunkedError::InvalidChecksumTrailer("x-amz-checksum-crc32"))
        );
    }

    #[tokio::test]
    async fn unsigned_trailer_variants() {
        let ok = crc32_b64(b"hello");
        let o = || unsigned_trailer_options(5);
        // With chunk extensions, without the final CRLF, with a CRLF after the empty chunk.
        for body in [
            format!("5;chunk-signature=00\r\nhello\r\n0;x=y\r\nx-amz-checksum-crc32:{ok}\r\n\r\n"),
            format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{ok}\r\n"),
            format!("5\r\nhello\r\n0\r\n\r\nX-Amz-Checksum-CRC32: {ok}\r\n\r\n"),
        ] {
            assert_eq!(
                decode(body.as_bytes(), o()).await,
                Ok(b"hello".to_vec()),
                "{body:?}"
            );
        }
        // No trailer announced: none may come.
        let mut plain = Options::new(Mode::UnsignedTrailer);
        plain.decoded_length = Some(5);
        assert_eq!(
            decode(b"5\r\nhello\r\n0\r\n\r\n", plain.clone()).await,
            Ok(b"hello".to_vec())
        );
        assert!(matches!(
            decode(
                format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{ok}\r\n\r\n").as_bytes(),
                plain
            )
            .await,
            Err(ChunkedError::MalformedTrailer(_))
        ));
        for (body, code) in [
            ("5\r\nhello\r\n0\r\n\r\n".to_string(), "BadDigest"),
            ("5\r\nhello\r\n0\r\n".to_string(), "BadDigest"),
            (format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{ok}"), "IncompleteBody"),
            (format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32c:{ok}\r\n\r\n"), "MalformedTrailerError"),
            (format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{ok}\r\nx-amz-checksum-crc32:{ok}\r\n\r\n"), "MalformedTrailerError"),
            (format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32 {ok}\r\n\r\n"), "MalformedTrailerError"),
            (format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{ok}\r\nx-amz-trailer-signature:00\r\n\r\n"), "MalformedTrailerError"),
            (format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{ok}\r\n\r\nmore"), "InvalidArgument"),
        ] {
            let r = decode(body.as_bytes(), o()).await;
            assert_eq!(r.as_ref().err().map(ChunkedError::s3_code), Some(code), "{body:?}: {r:?}");
        }
    }

    // -- STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER (AWS's trailer example) --

    const TRAILER_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    const TRAILER_SIG1: &str = "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2";
    const TRAILER_SIG2: &str = "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7";
    const TRAILER_SIG3: &str = "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992";
    const TRAILER_SIG: &str = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";

    fn signed_trailer_body(trailer_value: &str, trailer_sig: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(format!("10000;chunk-signature={TRAILER_SIG1}\r\n").as_bytes());
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(format!("\r\n400;chunk-signature={TRAILER_SIG2}\r\n").as_bytes());
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(
            format!(
                "\r\n0;chunk-signature={TRAILER_SIG3}\r\nx-amz-checksum-crc32c:{trailer_value}\r\nx-amz-trailer-signature:{trailer_sig}\r\n\r\n"
            )
            .as_bytes(),
        );
        body
    }

    fn signed_trailer_options() -> Options {
        let mut o = Options::new(Mode::SignedTrailer(signing(TRAILER_SEED)));
        o.decoded_length = Some(66560);
        o.trailer = Some(Algorithm::Crc32c);
        o
    }

    #[tokio::test]
    async fn signed_trailer_aws_example() {
        let body = signed_trailer_body("sOO8/Q==", TRAILER_SIG);
        let cuts: Vec<usize> = (body.len() - 150..body.len()).collect();
        for cuts in [&[][..], &cuts[..]] {
            let (out, handle) = decode_split(&body, cuts, signed_trailer_options()).await;
            assert_eq!(out.map(|o| o.len()), Ok(66560));
            assert_eq!(handle.get().map(|e| e.algorithm), Some(Algorithm::Crc32c));
        }
        // A trailer value changed after signing: the signature catches it.
        let forged = signed_trailer_body("AAAAAA==", TRAILER_SIG);
        assert_eq!(
            decode(&forged, signed_trailer_options()).await,
            Err(ChunkedError::TrailerSignatureMismatch)
        );
        let unsigned = String::from_utf8_lossy(&body)
            .replace(&format!("x-amz-trailer-signature:{TRAILER_SIG}\r\n"), "")
            .into_bytes();
        assert_eq!(
            decode(&unsigned, signed_trailer_options()).await,
            Err(ChunkedError::MissingTrailerSignature)
        );
        // A correctly signed but wrong checksum is a bad digest.
        let s = {
            let mut s = signing(TRAILER_SEED);
            assert!(s.verify_chunk(&[b'a'; 65536], TRAILER_SIG1));
            assert!(s.verify_chunk(&[b'a'; 1024], TRAILER_SIG2));
            assert!(s.verify_chunk(b"", TRAILER_SIG3));
            s.trailer_signature(b"x-amz-checksum-crc32c:AAAAAA==\n")
        };
        let wrong = signed_trailer_body("AAAAAA==", &s);
        assert_eq!(
            decode(&wrong, signed_trailer_options()).await,
            Err(ChunkedError::ChecksumMismatch("x-amz-checksum-crc32c"))
        );
    }

    #[test]
    fn options_from_headers() {
        let mut h = http::HeaderMap::new();
        assert_eq!(
            Options::from_headers(Mode::UnsignedTrailer, &h).err(),
            Some(ChunkedError::MissingDecodedLength)
        );
        h.insert(
            "x-amz-decoded-content-length",
            http::HeaderValue::from_static("66560"),
        );
        h.insert(
            "x-amz-trailer",
            http::HeaderValue::from_static("x-amz-checksum-crc32"),
        );
        let o = Options::from_headers(Mode::UnsignedTrailer, &h);
        assert_eq!(o.as_ref().ok().and_then(|o| o.decoded_length), Some(66560));
        assert_eq!(o.ok().and_then(|o| o.trailer), Some(Algorithm::Crc32));
        assert!(Options::from_headers(Mode::Signed(signing(SEED)), &h).is_err());
        h.insert(
            "x-amz-trailer",
            http::HeaderValue::from_static("x-amz-meta-foo"),
        );
        assert!(Options::from_headers(Mode::UnsignedTrailer, &h).is_err());
        h.remove("x-amz-trailer");
        h.insert(
            "x-amz-decoded-content-length",
            http::HeaderValue::from_static("-1"),
        );
        assert!(Options::from_headers(Mode::UnsignedTrailer, &h).is_err());
    }

    #[test]
    fn every_error_has_a_code_and_status() {
        let all = [
            ChunkedError::Body("x".into()),
            ChunkedError::Truncated { reading: "x" },
            ChunkedError::LineTooLong,
            ChunkedError::MissingCrlf { after: "x" },
            ChunkedError::BadChunkSize("x".into()),
            ChunkedError::ChunkTooLarge { size: 1, max: 0 },
            ChunkedError::MissingChunkSignature { chunk: 1 },
            ChunkedError::ChunkSignatureMismatch { chunk: 1 },
            ChunkedError::MissingTrailerSignature,
            ChunkedError::TrailerSignatureMismatch,
            ChunkedError::MalformedTrailer("x".into()),
            ChunkedError::MissingChecksumTrailer("x"),
            ChunkedError::InvalidChecksumTrailer("x"),
            ChunkedError::ChecksumMismatch("x"),
            ChunkedError::TooShort {
                declared: 2,
                got: 1,
            },
            ChunkedError::TooLong { declared: 1 },
            ChunkedError::TrailingData,
            ChunkedError::MissingDecodedLength,
            ChunkedError::InvalidHeader {
                name: "x",
                reason: "y".into(),
            },
        ];
        for e in all {
            assert!(!e.s3_code().is_empty());
            assert!(matches!(e.http_status(), 400 | 403 | 411), "{e}");
            assert!(!e.to_string().is_empty());
        }
    }
}
