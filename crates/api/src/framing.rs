//! Follows the HTTP/1 request heads of a connection as its bytes are read,
//! to refuse a request that carries both `Content-Length` and
//! `Transfer-Encoding` (the shape of request smuggling). hyper reads such a
//! request by its `Transfer-Encoding` and drops the `Content-Length` before
//! the service sees it, so the check has to look at the bytes: the
//! connection's socket feeds them here, and each complete head leaves a
//! verdict that the connection's service takes, in order, with its request.
//!
//! Only framing is followed (heads, `Content-Length` bodies, chunked bodies
//! with their trailers); anything this tracker does not follow (HTTP/2, an
//! upgrade, a head hyper would refuse anyway) turns it off for the rest of
//! the connection, and every later request is let through as hyper sees it.

use std::collections::VecDeque;

/// The largest head followed; hyper refuses larger ones itself.
const MAX_HEAD: usize = 64 * 1024;
/// The most headers followed (hyper's own limit is 100).
const MAX_HEADERS: usize = 128;

/// What a complete request head says about its framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Both `Content-Length` and `Transfer-Encoding`: answered 400.
    Ambiguous,
}

#[derive(Debug)]
enum State {
    Head(Vec<u8>),
    Body(u64),
    ChunkSize(Vec<u8>),
    ChunkData(u64),
    /// The CRLF after a chunk's data: bytes left of it.
    ChunkEnd(u8),
    Trailers(Vec<u8>),
    Off,
}

/// One connection's request framing, fed with every byte read.
#[derive(Debug)]
pub struct Tracker {
    state: State,
    verdicts: VecDeque<Verdict>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            state: State::Head(Vec::new()),
            verdicts: VecDeque::new(),
        }
    }
}

impl Tracker {
    /// The verdict of the next request handed to the service, oldest first;
    /// `Ok` when the tracker had nothing to say.
    pub fn next_verdict(&mut self) -> Verdict {
        self.verdicts.pop_front().unwrap_or(Verdict::Ok)
    }

    /// Follows the bytes just read.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let used = match &mut self.state {
                State::Off => return,
                State::Head(buf) => {
                    let before = buf.len();
                    let take = bytes.len().min(MAX_HEAD + 4 - before);
                    buf.extend_from_slice(&bytes[..take]);
                    match parse_head(buf) {
                        Head::Partial if buf.len() > MAX_HEAD => {
                            self.state = State::Off;
                            return;
                        }
                        Head::Partial => take,
                        Head::Invalid => {
                            self.state = State::Off;
                            return;
                        }
                        Head::Complete { len, verdict, next } => {
                            self.verdicts.push_back(verdict);
                            self.state = next;
                            len - before
                        }
                    }
                }
                State::Body(left) => {
                    let n = clamp(*left, bytes.len());
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::Head(Vec::new());
                    }
                    n
                }
                State::ChunkSize(line) => match bytes.iter().position(|&b| b == b'\n') {
                    None => {
                        line.extend_from_slice(bytes);
                        if line.len() > 4096 {
                            self.state = State::Off;
                            return;
                        }
                        bytes.len()
                    }
                    Some(i) => {
                        line.extend_from_slice(&bytes[..=i]);
                        match httparse::parse_chunk_size(line) {
                            Ok(httparse::Status::Complete((_, 0))) => {
                                self.state = State::Trailers(Vec::new());
                            }
                            Ok(httparse::Status::Complete((_, size))) => {
                                self.state = State::ChunkData(size);
                            }
                            _ => {
                                self.state = State::Off;
                                return;
                            }
                        }
                        i + 1
                    }
                },
                State::ChunkData(left) => {
                    let n = clamp(*left, bytes.len());
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::ChunkEnd(2);
                    }
                    n
                }
                State::ChunkEnd(left) => {
                    let n = (*left as usize).min(bytes.len());
                    *left -= n as u8;
                    if *left == 0 {
                        self.state = State::ChunkSize(Vec::new());
                    }
                    n
                }
                State::Trailers(buf) => match bytes.iter().position(|&b| b == b'\n') {
                    None => {
                        buf.extend_from_slice(bytes);
                        if buf.len() > MAX_HEAD {
                            self.state = State::Off;
                            return;
                        }
                        bytes.len()
                    }
                    Some(i) => {
                        buf.extend_from_slice(&bytes[..=i]);
                        // A trailer line, or the empty line that ends them.
                        if buf == b"\r\n" || buf == b"\n" {
                            self.state = State::Head(Vec::new());
                        } else {
                            buf.clear();
                        }
                        i + 1
                    }
                },
            };
            bytes = &bytes[used..];
        }
    }
}

fn clamp(left: u64, have: usize) -> usize {
    usize::try_from(left).map_or(have, |l| l.min(have))
}

enum Head {
    Partial,
    Invalid,
    Complete {
        len: usize,
        verdict: Verdict,
        next: State,
    },
}

fn parse_head(buf: &[u8]) -> Head {
    // Blank lines before a request line are allowed (RFC 9112 §2.2).
    let skip = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(&buf[skip..]) {
        Ok(httparse::Status::Complete(n)) => skip + n,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Invalid,
    };
    let mut te = None;
    let mut cl = None;
    let mut upgrade = req.method == Some("CONNECT");
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            cl = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    let (verdict, next) = match (te, cl) {
        (Some(_), Some(_)) => (Verdict::Ambiguous, State::Off),
        (Some(te), None) => {
            let chunked = std::str::from_utf8(te).ok().is_some_and(|v| {
                v.rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
            });
            let next = if chunked {
                State::ChunkSize(Vec::new())
            } else {
                State::Off
            };
            (Verdict::Ok, next)
        }
        (None, Some(cl)) => {
            let next = match std::str::from_utf8(cl)
                .ok()
                .map(|v| v.trim().parse::<u64>())
            {
                Some(Ok(0)) => State::Head(Vec::new()),
                Some(Ok(n)) => State::Body(n),
                _ => State::Off,
            };
            (Verdict::Ok, next)
        }
        (None, None) => (Verdict::Ok, State::Head(Vec::new())),
    };
    let next = if upgrade { State::Off } else { next };
    Head::Complete { len, verdict, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(input: &[u8], step: usize) -> Vec<Verdict> {
        let mut t = Tracker::default();
        for piece in input.chunks(step) {
            t.feed(piece);
        }
        std::iter::from_fn(|| t.verdicts.pop_front()).collect()
    }

    #[test]
    fn follows_pipelined_requests_in_any_read_sizes() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
            PUT /b/k HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
            POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
            5;ext=1\r\nhello\r\n10\r\nContent-Length:1\r\n0\r\nX-T: 1\r\n\r\n\
            \r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n\
            GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n";
        for step in [1, 2, 3, 7, 64, input.len()] {
            assert_eq!(
                verdicts(input, step),
                vec![
                    Verdict::Ok,
                    Verdict::Ok,
                    Verdict::Ok,
                    Verdict::Ok,
                    Verdict::Ambiguous
                ],
                "read size {step}"
            );
        }
    }

    #[test]
    fn turns_off_for_what_it_does_not_follow() {
        // HTTP/2's preface: nothing to say, ever.
        assert!(verdicts(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 5).is_empty());
        // After an upgrade the bytes are another protocol's.
        let up = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\
            GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(verdicts(up, 9), vec![Verdict::Ok]);
    }

    #[test]
    fn an_ambiguous_request_is_found_in_either_order() {
        for head in [
            &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
        ] {
            assert_eq!(verdicts(head, 4), vec![Verdict::Ambiguous]);
        }
    }
}
