//! The gateway's listener: the edge a client (or a balancer) meets.
//!
//! axum's `serve` has no timeouts and no connection cap, so this is the
//! accept loop nginx and Envoy would give: a cap on open connections, the
//! PROXY protocol when a balancer speaks it, a deadline for a request's
//! head, a limit on keep-alive idleness, and on shutdown a period of
//! reporting not-ready while still serving, then a bounded drain.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

use crate::{client_address::TrustedProxies, proxy_protocol};

/// How the listener treats connections.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Every connection opens with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// Whose PROXY header or forwarded header is believed.
    pub trusted_proxies: Arc<TrustedProxies>,
    /// From the moment a request's first byte (or the PROXY header) is
    /// awaited in earnest until its head has arrived.
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections at most; past it new ones wait in the kernel's
    /// backlog (and a balancer sends them elsewhere).
    pub max_connections: usize,
    /// After the stop signal: not ready, but still serving, for this long.
    pub shutdown_delay: Duration,
    /// Then: the calls in flight get this long to finish.
    pub shutdown_drain: Duration,
}

/// The gateway's readiness: false from the stop signal on, so the
/// endpoints controller takes the pod out before the listener closes.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        !self.0.load(Ordering::Relaxed)
    }

    fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Accepts and serves until `shutdown`, then reports not-ready, keeps
/// serving for the delay, and drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    edge: EdgeSettings,
    readiness: Arc<Readiness>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let connections = TaskTracker::new();
    // Fired when the delay is over: open connections finish what they are
    // doing and close.
    let draining = CancellationToken::new();
    let slots = Arc::new(Semaphore::new(edge.max_connections.max(1)));
    let edge = Arc::new(edge);
    let stopping = CancellationToken::new();
    {
        let stopping = stopping.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopping.cancel();
        });
    }
    let delay_over = async {
        stopping.cancelled().await;
        readiness.stop();
        tracing::info!(
            delay = ?edge.shutdown_delay,
            "stop requested: not ready; serving on until the endpoints have moved"
        );
        tokio::time::sleep(edge.shutdown_delay).await;
    };
    tokio::pin!(delay_over);
    loop {
        let accepted = tokio::select! {
            () = &mut delay_over => break,
            permit = slots.clone().acquire_owned() => {
                let Ok(permit) = permit else { break };
                tokio::select! {
                    () = &mut delay_over => break,
                    accepted = listener.accept() => accepted.map(|accepted| (accepted, permit)),
                }
            }
        };
        let ((stream, peer), permit) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(%error, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let edge = edge.clone();
        let draining = draining.clone();
        // A connection accepted while stopping serves one request and closes.
        let keep_alive = !stopping.is_cancelled();
        connections.spawn(async move {
            serve_connection(stream, peer, router, &edge, draining, keep_alive).await;
            drop(permit);
        });
    }
    drop(listener);
    draining.cancel();
    drain(connections, edge.shutdown_drain).await;
}

/// Waits up to `deadline` for the open connections to finish; those still
/// open then are dropped with the process.
async fn drain(connections: TaskTracker, deadline: Duration) {
    connections.close();
    tracing::info!(open = connections.len(), drain = ?deadline, "draining connections");
    if tokio::time::timeout(deadline, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain: closing them"
        );
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    edge: &EdgeSettings,
    draining: CancellationToken,
    keep_alive: bool,
) {
    let activity = Arc::new(Activity::new());
    let (client, prefix) = if edge.proxy_protocol {
        match read_proxy_header(&mut stream, peer, edge).await {
            Some(read) => read,
            None => return,
        }
    } else {
        (peer, bytes::Bytes::new())
    };
    if !prefix.is_empty() {
        activity.head_started();
    }
    let io = Watched {
        inner: stream,
        prefix,
        activity: activity.clone(),
    };
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            activity.request_started();
            request.extensions_mut().insert(ConnectInfo(client));
            let call = router.clone().oneshot(request.map(axum::body::Body::new));
            let activity = activity.clone();
            async move {
                let response = call.await;
                activity.request_finished();
                response
            }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        // Our own head deadline below counts from the first byte, so a
        // keep-alive connection's idle time is not taken from it.
        .header_read_timeout(None)
        .keep_alive(keep_alive)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        let deadline = activity.deadline(edge.header_read_timeout, edge.idle_timeout);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended");
                }
                return;
            }
            // A request's first byte: its head deadline starts now.
            () = activity.head.notified() => {}
            // Once closing, the connection ends by itself or with the drain.
            () = tokio::time::sleep_until(deadline), if !closing => {
                match activity.expired(edge.header_read_timeout, edge.idle_timeout) {
                    Some(Expired::Head) => {
                        tracing::debug!(%peer, "request head not read in time: closing");
                        return;
                    }
                    Some(Expired::Idle) => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    None => {}
                }
            }
            () = draining.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// The client a PROXY protocol header names (believed from a trusted
/// balancer only), and the bytes read past it; `None` closes the
/// connection: no valid header within the head deadline.
async fn read_proxy_header(
    stream: &mut TcpStream,
    peer: SocketAddr,
    edge: &EdgeSettings,
) -> Option<(SocketAddr, bytes::Bytes)> {
    let header = tokio::time::timeout(edge.header_read_timeout, proxy_protocol::read(stream)).await;
    match header {
        Ok(Ok(header)) => {
            // A trusted balancer's health checks (LOCAL) are the balancer itself.
            let client = if edge.trusted_proxies.trusts(peer.ip()) {
                header.source.unwrap_or(peer)
            } else {
                peer
            };
            Some((client, header.rest))
        }
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "connection refused");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "no PROXY protocol header in time");
            None
        }
    }
}

/// Where a connection is between requests, and since when.
struct Activity {
    /// Woken when a request's first byte arrives.
    head: tokio::sync::Notify,
    start: Instant,
    phase: AtomicU8,
    /// Milliseconds from `start` to the phase's beginning.
    since: AtomicU64,
}

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

enum Expired {
    Head,
    Idle,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            head: tokio::sync::Notify::new(),
            start: Instant::now(),
            phase: AtomicU8::new(IDLE),
            since: AtomicU64::new(0),
        }
    }

    fn enter(&self, phase: u8) {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since.store(elapsed, Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    fn head_started(&self) {
        if self.phase.load(Ordering::Acquire) == IDLE {
            self.enter(HEAD);
            self.head.notify_one();
        }
    }

    fn request_started(&self) {
        self.enter(BUSY);
    }

    fn request_finished(&self) {
        self.enter(IDLE);
    }

    fn since(&self) -> Instant {
        self.start + Duration::from_millis(self.since.load(Ordering::Relaxed))
    }

    /// When to look again.
    fn deadline(&self, head: Duration, idle: Duration) -> Instant {
        match self.phase.load(Ordering::Acquire) {
            IDLE => self.since() + idle,
            HEAD => self.since() + head,
            _ => Instant::now() + head.min(idle),
        }
    }

    fn expired(&self, head: Duration, idle: Duration) -> Option<Expired> {
        let now = Instant::now();
        match self.phase.load(Ordering::Acquire) {
            IDLE if now >= self.since() + idle => Some(Expired::Idle),
            HEAD if now >= self.since() + head => Some(Expired::Head),
            _ => None,
        }
    }
}

/// The connection's stream: the bytes read past a PROXY header first, and
/// the first byte of each request noted.
struct Watched {
    inner: TcpStream,
    prefix: bytes::Bytes,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return std::task::Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.head_started();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
