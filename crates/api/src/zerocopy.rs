//! Zero-copy GETs: on a plain HTTP/1 connection the kernel copies a large
//! object's bytes from the page cache to the socket itself (`sendfile`),
//! as nginx does, instead of reading them into memory and writing them out.
//!
//! hyper owns the connection and writes what a response body yields, so
//! the body and the socket meet through a per-connection queue: for each
//! checked [`FileSpan`] the body queues the span and yields a placeholder
//! of the same length that points into [`PLACEHOLDER`]; [`SpanStream`], the
//! connection's socket, recognises a write of placeholder bytes by its
//! address and sends that many bytes of the queued span instead. hyper
//! only counts what was written, so the framing stays its own.
//!
//! This relies on hyper's HTTP/1 writer handing body buffers to the socket
//! as they are (its "queue" strategy, chosen because [`SpanStream`] says it
//! writes vectored) rather than copying them. It fails closed: a
//! placeholder write that does not match the queued span, in length or
//! order, is an I/O error that drops the connection; the placeholder bytes
//! themselves are never written. HTTP/2 and TLS connections do not get the
//! queue ([`ZeroCopy::for_request`]) and read the bytes as before.
//! `crates/nuage/tests/objects.rs` checks the bytes of large GETs through
//! this path with real clients. See `docs/adr/0011-zero-copy-get.md`.

use std::collections::VecDeque;
use std::future::{ready, Ready};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::Version;
use nuage_object::{FileSpan, ObjectBody, SPAN};
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Bytes sent by `sendfile`, for `/metrics` (process-wide: the sockets
/// know no registry).
pub(crate) static SENT: LazyLock<Counter> = LazyLock::new(Counter::default);

/// What a placeholder points into; never written to a socket.
static PLACEHOLDER: [u8; SPAN] = [0; SPAN];

fn is_placeholder(b: &[u8]) -> bool {
    let start = PLACEHOLDER.as_ptr() as usize;
    let p = b.as_ptr() as usize;
    !b.is_empty() && p >= start && p < start + PLACEHOLDER.len()
}

/// A connection's queue of spans to send, shared by its socket and the
/// bodies of its responses (a request extension).
#[derive(Clone, Default)]
pub struct ZeroCopy(Arc<Mutex<VecDeque<FileSpan>>>);

impl ZeroCopy {
    /// The queue of the connection a request came on, when its responses
    /// may use it: plain TCP (the extension is only added there) and
    /// HTTP/1 (HTTP/2 frames and copies body bytes itself).
    pub fn for_request(parts: &http::request::Parts) -> Option<ZeroCopy> {
        if parts.version > Version::HTTP_11 {
            return None;
        }
        parts.extensions.get::<ZeroCopy>().cloned()
    }

    /// A response body for an object's bytes: sent by the kernel when
    /// `zero_copy` is given and the bytes are in segment files, else read.
    pub fn body(zero_copy: Option<ZeroCopy>, data: ObjectBody) -> Body {
        match (data, zero_copy) {
            (ObjectBody::Full(b), _) => Body::from(b),
            (ObjectBody::Segments(s), None) => Body::from_stream(s.into_bytes()),
            (ObjectBody::Segments(s), Some(z)) => {
                Body::from_stream(s.into_spans().map(move |span| {
                    span.map(|span| {
                        let len = span.len;
                        z.lock().push_back(span);
                        Bytes::from_static(&PLACEHOLDER[..len])
                    })
                }))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<FileSpan>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// For handlers: [`ZeroCopy::for_request`] as an `Option<ZeroCopy>`.
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for ZeroCopy {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(ZeroCopy::for_request(parts))
    }
}

/// A plain TCP connection that sends queued file spans in place of
/// placeholder bytes.
pub struct SpanStream {
    tcp: TcpStream,
    spans: ZeroCopy,
}

impl SpanStream {
    /// Sends up to `len` bytes of the front span, which must have exactly
    /// `len` bytes left (hyper writes each placeholder whole or advances it
    /// by what was sent, as the span is).
    fn poll_send_span(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<usize>> {
        let mut q = self.spans.lock();
        let Some(span) = q.front_mut().filter(|s| s.len == len) else {
            return Poll::Ready(Err(io::Error::other(
                "a zero-copy response body is out of step with its connection",
            )));
        };
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                let mut offset = span.offset;
                rustix::fs::sendfile(&self.tcp, &*span.file, Some(&mut offset), span.len)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a segment file is shorter than its metadata says",
                    )))
                }
                Ok(n) => {
                    SENT.inc_by(n as u64);
                    span.offset += n as u64;
                    span.len -= n;
                    if span.len == 0 {
                        q.pop_front();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for SpanStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SpanStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if is_placeholder(buf) {
            return this.poll_send_span(cx, buf.len());
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    /// Writes the buffers before the first placeholder, or sends the span
    /// of the placeholder when it comes first.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Empty buffers first would make a write of nothing (a "WriteZero"
        // error for hyper) before a placeholder.
        let bufs = bufs
            .iter()
            .position(|b| !b.is_empty())
            .map_or(bufs, |i| &bufs[i..]);
        match bufs.iter().position(|b| is_placeholder(b)) {
            Some(0) => this.poll_send_span(cx, bufs[0].len()),
            Some(i) => Pin::new(&mut this.tcp).poll_write_vectored(cx, &bufs[..i]),
            None => Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// The plain-HTTP acceptor: each connection's socket is a [`SpanStream`]
/// and its requests carry its [`ZeroCopy`] queue.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZeroCopyAcceptor;

impl<S> axum_server::accept::Accept<TcpStream, S> for ZeroCopyAcceptor {
    type Stream = SpanStream;
    type Service = <axum::Extension<ZeroCopy> as tower::Layer<S>>::Service;
    type Future = Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, tcp: TcpStream, service: S) -> Self::Future {
        let spans = ZeroCopy::default();
        let service = tower::Layer::layer(&axum::Extension(spans.clone()), service);
        ready(Ok((SpanStream { tcp, spans }, service)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A connected pair on loopback: our side wrapped, the peer's plain.
    async fn pair() -> (SpanStream, ZeroCopy, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let peer = TcpStream::connect(l.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (tcp, _) = l.accept().await.expect("accept");
        let spans = ZeroCopy::default();
        (
            SpanStream {
                tcp,
                spans: spans.clone(),
            },
            spans,
            peer,
        )
    }

    fn file(data: &[u8]) -> Arc<std::fs::File> {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(data).expect("write");
        Arc::new(f)
    }

    fn span(file: &Arc<std::fs::File>, offset: u64, len: usize) -> FileSpan {
        FileSpan {
            file: file.clone(),
            offset,
            len,
        }
    }

    /// Writes `bufs` whole, as hyper does: vectored writes, advancing past
    /// what each one took.
    async fn write_all_vectored(s: &mut SpanStream, bufs: &mut [Bytes]) -> io::Result<()> {
        loop {
            let slices: Vec<IoSlice<'_>> = bufs
                .iter()
                .filter(|b| !b.is_empty())
                .map(|b| IoSlice::new(b))
                .collect();
            if slices.is_empty() {
                return s.flush().await;
            }
            let mut n = s.write_vectored(&slices).await?;
            for b in bufs.iter_mut() {
                let k = n.min(b.len());
                let _ = b.split_to(k);
                n -= k;
            }
        }
    }

    #[tokio::test]
    async fn placeholders_become_the_spans_bytes_in_order() {
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i * 7 + i / 1000) as u8)
            .collect();
        let f = file(&data);
        let (mut s, spans, mut peer) = pair().await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.expect("read");
            got
        });
        // A head, two spans of the file (the second not where the first
        // ends), a tail: the peer gets the head, the file's bytes, the tail.
        let (a, b) = (SPAN, 700_000);
        spans.lock().push_back(span(&f, 10, a));
        spans.lock().push_back(span(&f, 2_000_000, b));
        let mut bufs = vec![
            Bytes::from_static(b"HEAD"),
            Bytes::from_static(&PLACEHOLDER[..a]),
            Bytes::from_static(&PLACEHOLDER[..b]),
            Bytes::from_static(b"TAIL"),
        ];
        write_all_vectored(&mut s, &mut bufs).await.expect("write");
        assert!(spans.lock().is_empty());
        s.shutdown().await.expect("shutdown");
        drop(s);
        let got = reader.await.expect("reader");
        let mut want = b"HEAD".to_vec();
        want.extend_from_slice(&data[10..10 + a]);
        want.extend_from_slice(&data[2_000_000..2_000_000 + b]);
        want.extend_from_slice(b"TAIL");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "wrong bytes");
    }

    #[tokio::test]
    async fn a_placeholder_out_of_step_is_an_error_and_sends_nothing() {
        let f = file(&[1u8; 4096]);
        let (mut s, spans, mut peer) = pair().await;
        // No span queued.
        let e = s
            .write_vectored(&[IoSlice::new(&PLACEHOLDER[..100])])
            .await
            .expect_err("no span");
        assert_eq!(e.kind(), io::ErrorKind::Other);
        // A span of another length.
        spans.lock().push_back(span(&f, 0, 4096));
        let e = s
            .write(&PLACEHOLDER[..100])
            .await
            .expect_err("wrong length");
        assert_eq!(e.kind(), io::ErrorKind::Other);
        // A span past the end of its file.
        spans.lock().clear();
        spans.lock().push_back(span(&f, 4000, 200));
        let n = s
            .write(&PLACEHOLDER[..200])
            .await
            .expect("the 96 bytes there");
        assert_eq!(n, 96);
        let e = s
            .write(&PLACEHOLDER[96..200])
            .await
            .expect_err("past the end");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        drop(s);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, vec![1u8; 96], "only the file's bytes were sent");
    }
}
