//! What one client can hold of the server: connections and their idle time.
//!
//! Every accepted connection takes a slot in one table of at
//! most `max` slots, sized below the process's file limit so that a flood
//! of idle sockets can never starve the store, the image files or the node
//! agent of descriptors (a failed `open` there once read as "the instance
//! stopped"). When the table is full, the connection idle the longest (no
//! request in flight) is closed to make room, as nginx reuses keep-alive
//! connections when it runs short; when every slot has a request in flight
//! the newcomer is refused. Either way a warning is logged, at most every
//! ten seconds. A connection that moves no byte for `idle` while no request
//! is in flight is closed too. hyper's own header-read timeout (set where
//! the server is built) bounds a request's headers.
//!
//! [`Bounded`] wraps the connection acceptor of plain and TLS listeners
//! alike; a request counts as in flight from the moment hyper hands it to
//! the service until its response body is done or dropped.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::framing::{Tracker, Verdict};

/// The bounds, from the server's configuration.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Connections held at once.
    pub max: usize,
    /// How long a connection may sit with no request and no byte moving.
    pub idle: Duration,
}

/// The connections allowed under a file limit: all but a reserve of a
/// quarter (64 to 4096 descriptors, for the store, object segments, image
/// layers, consoles and pidfds), and at most 16,384 (hyper's buffers make
/// an idle connection cost ~16 KiB).
pub fn max_connections_for(nofile: u64) -> usize {
    let reserve = (nofile / 4).clamp(64, 4096);
    usize::try_from(nofile.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .clamp(16, 16_384)
}

/// Figures for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnMetrics {
    /// Connections held now.
    pub open: Gauge,
    /// Idle connections closed to make room for a new one.
    pub evicted: Counter,
    /// Connections refused because every slot had a request in flight.
    pub refused: Counter,
    /// Connections closed after sitting idle.
    pub idle_closed: Counter,
}

/// One connection's state, shared by its socket and its service.
struct Slot {
    /// Requests whose response is not finished.
    in_flight: AtomicUsize,
    /// Milliseconds since the table's epoch at the last byte or request end.
    last_active: AtomicU64,
    /// Set to make the connection end at its next read.
    closing: AtomicBool,
    /// The connection's reader, woken when `closing` is set.
    waker: AtomicWaker,
    /// The request framing read so far (HTTP/1).
    framing: Mutex<Tracker>,
}

impl Slot {
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    fn framing(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.framing.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Table {
    limits: ConnLimits,
    epoch: Instant,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next: AtomicU64,
    /// When the last "limit reached" warning was logged (ms since epoch + 1).
    warned: AtomicU64,
    metrics: Arc<ConnMetrics>,
}

impl Table {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Takes a slot for a new connection, closing the longest-idle one when
    /// the table is full; `None` when every slot is busy.
    fn admit(&self) -> Option<(u64, Arc<Slot>)> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let live = slots
            .values()
            .filter(|s| !s.closing.load(Ordering::Acquire))
            .count();
        if live >= self.limits.max {
            let victim = slots
                .values()
                .filter(|s| s.idle() && !s.closing.load(Ordering::Acquire))
                .min_by_key(|s| s.last_active.load(Ordering::Acquire));
            match victim {
                Some(v) => {
                    v.closing.store(true, Ordering::Release);
                    v.waker.wake();
                    self.metrics.evicted.inc();
                    self.warn("closing the longest-idle connection to admit a new one");
                }
                None => {
                    self.metrics.refused.inc();
                    self.warn("refusing a new connection: every slot has a request in flight");
                    return None;
                }
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(self.now()),
            closing: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            framing: Mutex::new(Tracker::default()),
        });
        slots.insert(id, slot.clone());
        self.metrics
            .open
            .set(i64::try_from(slots.len()).unwrap_or(i64::MAX));
        Some((id, slot))
    }

    fn release(&self, id: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.remove(&id);
        self.metrics
            .open
            .set(i64::try_from(slots.len()).unwrap_or(i64::MAX));
    }

    /// Logs that the limit was reached, at most every ten seconds.
    fn warn(&self, what: &str) {
        let now = self.now() + 1;
        let last = self.warned.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 10_000)
            && self
                .warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                max_connections = self.limits.max,
                evicted = self.metrics.evicted.get(),
                refused = self.metrics.refused.get(),
                "connection limit reached: {what} (raise --max-connections, or the file limit, if this load is legitimate)"
            );
        }
    }
}

/// An acceptor that holds connections within [`ConnLimits`]; wraps the
/// plain ([`crate::zerocopy::ZeroCopyAcceptor`]) or TLS one.
#[derive(Clone)]
pub struct Bounded<A> {
    inner: A,
    table: Arc<Table>,
}

impl<A> Bounded<A> {
    pub fn new(inner: A, limits: ConnLimits, metrics: Arc<ConnMetrics>) -> Self {
        Bounded {
            inner,
            table: Arc::new(Table {
                limits,
                epoch: Instant::now(),
                slots: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
                warned: AtomicU64::new(0),
                metrics,
            }),
        }
    }
}

type AcceptFuture<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl<I, S, A> axum_server::accept::Accept<I, S> for Bounded<A>
where
    A: axum_server::accept::Accept<I, Tracked<S>> + Clone + Send + Sync + 'static,
    A::Future: Send + 'static,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = Limited<A::Stream>;
    type Service = A::Service;
    type Future = AcceptFuture<(Self::Stream, Self::Service)>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let table = self.table.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let Some((id, slot)) = table.admit() else {
                return Err(io::Error::other("connection limit reached"));
            };
            let lease = Lease {
                table: table.clone(),
                id,
            };
            let service = Tracked {
                inner: service,
                slot: slot.clone(),
                table: table.clone(),
            };
            let (stream, service) = inner.accept(stream, service).await?;
            let deadline = Box::pin(tokio::time::sleep(table.limits.idle));
            Ok((
                Limited {
                    inner: stream,
                    slot,
                    table,
                    deadline,
                    _lease: lease,
                },
                service,
            ))
        })
    }
}

/// Gives the slot back when the connection is dropped.
struct Lease {
    table: Arc<Table>,
    id: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.table.release(self.id);
    }
}

/// A connection's socket: notes every byte moved and ends the connection
/// when it was chosen to make room or sat idle too long.
pub struct Limited<S> {
    inner: S,
    slot: Arc<Slot>,
    table: Arc<Table>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    _lease: Lease,
}

impl<S> Limited<S> {
    fn touch(&self) {
        self.slot
            .last_active
            .store(self.table.now(), Ordering::Release);
    }

    /// True when the connection should end now: evicted, or idle past the
    /// limit (which re-arms the timer for the time left otherwise).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.slot.idle() {
            return false;
        }
        if self.slot.closing.load(Ordering::Acquire) {
            return true;
        }
        let idle = self.table.limits.idle;
        let since = Duration::from_millis(
            self.table
                .now()
                .saturating_sub(self.slot.last_active.load(Ordering::Acquire)),
        );
        if since >= idle {
            self.table.metrics.idle_closed.inc();
            return true;
        }
        let at = tokio::time::Instant::now() + (idle - since);
        if self.deadline.deadline() != at {
            self.deadline.as_mut().reset(at);
        }
        // Registers the waker for the deadline; the next poll re-checks.
        let _ = self.deadline.as_mut().poll(cx);
        false
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.slot.waker.register(cx.waker());
        if this.slot.idle() && this.slot.closing.load(Ordering::Acquire) {
            return Poll::Ready(Ok(())); // end of stream: hyper closes
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                let read = &buf.filled()[before..];
                if !read.is_empty() {
                    this.touch();
                    this.slot.framing().feed(read);
                }
                Poll::Ready(r)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Passed through as they are: the zero-copy socket recognises its
        // placeholders by address.
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A connection's service: counts its requests in flight until their
/// response bodies end.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    slot: Arc<Slot>,
    table: Arc<Table>,
}

/// One request in flight; ends when dropped with the response body.
struct InFlight {
    slot: Arc<Slot>,
    table: Arc<Table>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.slot
            .last_active
            .store(self.table.now(), Ordering::Release);
        if self.slot.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Idle again: let the reader re-arm its timer or close.
            self.slot.waker.wake();
        }
    }
}

impl<S, B> tower::Service<http::Request<B>> for Tracked<S>
where
    S: tower::Service<http::Request<B>, Response = axum::response::Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let verdict = self.slot.framing().next_verdict();
        if let Some(why) = malformed(&req, verdict) {
            return Box::pin(std::future::ready(Ok(bad_request(why))));
        }
        self.slot.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight {
            slot: self.slot.clone(),
            table: self.table.clone(),
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|body| {
                Body::new(GuardedBody {
                    inner: body,
                    _guard: guard,
                })
            }))
        })
    }
}

/// Why a request is refused before any front door sees it: framing that
/// two parsers could read differently, or an HTTP/1.1 request without the
/// `Host` that RFC 9112 §3.2 requires.
fn malformed<B>(req: &http::Request<B>, verdict: Verdict) -> Option<&'static str> {
    if verdict == Verdict::Ambiguous {
        return Some("the request carries both Content-Length and Transfer-Encoding");
    }
    if req.version() == http::Version::HTTP_11 && !req.headers().contains_key(http::header::HOST) {
        return Some("an HTTP/1.1 request must carry a Host header");
    }
    None
}

fn bad_request(why: &str) -> axum::response::Response {
    let mut resp = axum::response::Response::new(Body::from(format!("400 Bad Request: {why}\n")));
    *resp.status_mut() = http::StatusCode::BAD_REQUEST;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    resp
}

/// A response body that keeps its request in flight until it ends.
struct GuardedBody {
    inner: Body,
    _guard: InFlight,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_below_the_file_limit() {
        assert_eq!(max_connections_for(1024), 768);
        assert_eq!(max_connections_for(256), 192);
        assert_eq!(max_connections_for(100), 36);
        assert_eq!(max_connections_for(10), 16);
        assert_eq!(max_connections_for(1 << 20), 16_384);
        assert_eq!(max_connections_for(20_000), 15_904);
    }
}
