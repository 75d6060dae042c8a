//! Fuzz target for the aws-chunked decoder. Two kinds of input:
//!
//! * raw bytes, decoded in any of the three modes with fuzzed options;
//! * a body the target encodes itself, with valid chunk and trailer
//!   signatures, then damages with a few byte edits, so that the signed
//!   paths are reached too.
//!
//! Either way the body is fed in fuzzed pieces and decoded a second time in
//! one piece: the outcome (the bytes handed on, then the error or the end)
//! must not depend on how the input was split, and a body accepted with a
//! declared length has exactly that length.
//!
//! ```text
//! scripts/fuzz 60 aws_chunked
//! ```
#![no_main]

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use arbitrary::Arbitrary;
use bytes::Bytes;
use futures_util::Stream;
use libfuzzer_sys::fuzz_target;
use nuage_fuzz::chunked::{AwsChunked, ChunkSigning, ChunkedError, Mode, Options};
use nuage_identity::sigv4;
use nuage_object::checksum::{self, Algorithm, Hasher};
use sha2::{Digest, Sha256};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20130524T000000Z";
const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

#[derive(Arbitrary, Debug)]
struct Settings {
    mode: u8,
    trailer: Option<u8>,
    declared: Option<u32>,
    max_chunk: Option<u16>,
    cuts: Vec<u16>,
}

#[derive(Arbitrary, Debug)]
struct Generated<'a> {
    chunks: Vec<&'a [u8]>,
    /// Replace the trailer's value with this one (still signed).
    trailer_value: Option<&'a str>,
    edits: Vec<(u16, u8, bool)>,
    final_crlf: bool,
}

#[derive(Arbitrary, Debug)]
enum Body<'a> {
    Raw(&'a [u8]),
    Generated(Generated<'a>),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    settings: Settings,
    body: Body<'a>,
}

fn key() -> [u8; 32] {
    sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3")
}

fn algorithm(i: u8) -> Algorithm {
    Algorithm::ALL[usize::from(i) % Algorithm::ALL.len()]
}

fn options(s: &Settings) -> Options {
    let signing = || ChunkSigning::from_parts(key(), DATE, SCOPE, SEED);
    let mode = match s.mode % 3 {
        0 => Mode::Signed(signing()),
        1 => Mode::SignedTrailer(signing()),
        _ => Mode::UnsignedTrailer,
    };
    let signed_only = matches!(mode, Mode::Signed(_));
    let mut o = Options::new(mode);
    o.trailer = s.trailer.filter(|_| !signed_only).map(algorithm);
    o.decoded_length = s.declared.map(u64::from);
    if let Some(max) = s.max_chunk {
        o.max_chunk_size = usize::from(max);
    }
    o
}

/// Encodes `g` as the settings' mode would, signing what must be signed.
fn encode(g: &Generated<'_>, o: &Options) -> Vec<u8> {
    let mut body = Vec::new();
    let signed = matches!(o.mode, Mode::Signed(_) | Mode::SignedTrailer(_));
    let key = key();
    let mut previous = SEED.to_owned();
    let mut hasher = o.trailer.map(Hasher::new);
    let empty: &[u8] = &[];
    for chunk in g.chunks.iter().copied().chain(std::iter::once(empty)) {
        if let Some(h) = hasher.as_mut() {
            h.update(chunk);
        }
        if signed {
            previous = sigv4::chunk_signature(&key, DATE, SCOPE, &previous, chunk);
            body.extend_from_slice(
                format!("{:x};chunk-signature={previous}\r\n", chunk.len()).as_bytes(),
            );
        } else {
            body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        }
        if !chunk.is_empty() {
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
    }
    match &o.mode {
        Mode::Signed(_) => body.extend_from_slice(b"\r\n"),
        Mode::SignedTrailer(_) | Mode::UnsignedTrailer => {
            let mut canonical = String::new();
            if let (Some(a), Some(h)) = (o.trailer, hasher) {
                let value = match g.trailer_value {
                    Some(v) => v.replace(['\r', '\n'], ""),
                    None => checksum::to_base64(&h.finish()),
                };
                canonical = format!("{}:{}\n", a.header_name(), value.trim());
                body.extend_from_slice(format!("{}:{value}\r\n", a.header_name()).as_bytes());
            }
            if matches!(o.mode, Mode::SignedTrailer(_)) {
                let signature = trailer_signature(&previous, canonical.as_bytes());
                body.extend_from_slice(
                    format!("x-amz-trailer-signature:{signature}\r\n").as_bytes(),
                );
            }
            if g.final_crlf {
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    for &(at, byte, insert) in &g.edits {
        if body.is_empty() {
            break;
        }
        let at = usize::from(at) % body.len();
        if insert {
            body.insert(at, byte);
        } else {
            body[at] = byte;
        }
    }
    body
}

/// The trailer signature, computed independently of the decoder (which
/// has its own HMAC): a textbook HMAC-SHA256 over AWS's string to sign.
fn trailer_signature(previous: &str, canonical: &[u8]) -> String {
    let string = format!(
        "AWS4-HMAC-SHA256-TRAILER\n{DATE}\n{SCOPE}\n{previous}\n{}",
        hex::encode(Sha256::digest(canonical))
    );
    let key = key();
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(string)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize(),
    )
}

/// Runs the decoder over `body` cut at `cuts`: the bytes handed on and how it ended.
fn run(body: &[u8], cuts: &[u16], o: Options) -> (Vec<u8>, Option<ChunkedError>) {
    let mut frames: Vec<Result<Bytes, &'static str>> = Vec::new();
    let mut rest = body;
    for &cut in cuts {
        let n = usize::from(cut).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        frames.push(Ok(Bytes::copy_from_slice(piece)));
        rest = tail;
    }
    frames.push(Ok(Bytes::copy_from_slice(rest)));
    let mut stream = pin!(AwsChunked::new(futures_util::stream::iter(frames), o));
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(Ok(data))) => {
                assert!(!data.is_empty(), "empty frames are not handed on");
                out.extend_from_slice(&data);
            }
            Poll::Ready(Some(Err(e))) => {
                let _ = (e.s3_code(), e.http_status(), e.to_string());
                // The stream ends after an error.
                assert!(matches!(
                    stream.as_mut().poll_next(&mut cx),
                    Poll::Ready(None)
                ));
                return (out, Some(e));
            }
            Poll::Ready(None) => return (out, None),
            Poll::Pending => panic!("an always-ready input never leaves the decoder pending"),
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let o = options(&input.settings);
    let body = match &input.body {
        Body::Raw(b) => b.to_vec(),
        Body::Generated(g) => encode(g, &o),
    };
    let declared = o.decoded_length;
    let whole = run(&body, &[], o.clone());
    let split = run(&body, &input.settings.cuts, o);
    assert_eq!(
        whole, split,
        "the outcome depends on how the body was split"
    );
    if whole.1.is_none() {
        if let Some(declared) = declared {
            assert_eq!(whole.0.len() as u64, declared);
        }
    }
    // An undamaged generated body within the limits must be accepted.
    if let Body::Generated(g) = &input.body {
        let total: usize = g.chunks.iter().map(|c| c.len()).sum();
        let fits = g
            .chunks
            .iter()
            .all(|c| c.len() <= input.settings.max_chunk.map_or(usize::MAX, usize::from));
        let length_ok = declared.is_none_or(|d| d == total as u64);
        let untouched = g.edits.is_empty() && g.trailer_value.is_none();
        if untouched && fits && length_ok && g.chunks.iter().all(|c| !c.is_empty()) {
            assert_eq!(whole.1, None, "a well-formed body was refused");
            let expected: Vec<u8> = g.chunks.concat();
            assert_eq!(whole.0, expected);
        }
    }
});
