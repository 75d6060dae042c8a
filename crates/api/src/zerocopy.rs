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
