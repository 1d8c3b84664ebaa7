//! The accept loop: connections in, each served by hyper (HTTP/1.1) with
//! the router, until shutdown.
//!
//! It is ours rather than `axum::serve` because a slow client must not
//! hold the server (issue 11: 1,100 half-open connections filled the file
//! handles and `/healthz` stopped answering):
//! - a connection must send a request's headers within
//!   `--header-read-timeout`, counted from its opening and again from the
//!   end of each response (so an idle kept-alive connection is closed after
//!   the same time);
//! - at most `--max-connections` are open at once, and at most
//!   `--max-connections-per-client` from one address (trusted proxies,
//!   which carry everybody's connections, are not counted per client);
//!   beyond either, a new connection is closed at once, before a byte is
//!   read, and counted in `gatehouse_connections_refused_total`.
//!
//! The timeouts run on a `Clock`: the system's in production, a manual one
//! in tests, which move it past the timeout instead of waiting.

use super::client::TrustedProxies;
use crate::clock::Clock;
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// What the loop enforces.
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_per_client: usize,
    /// Their connections count toward the total only.
    pub trusted_proxies: TrustedProxies,
    /// How long shutdown waits for requests in flight.
    pub drain: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish (up to `limits.drain`). Connections are
/// counted in `metrics`, when given (the public listener's).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    clock: Clock,
    metrics: Option<Arc<Metrics>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let open = Arc::new(Open::new(limits.max_connections, limits.max_per_client));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(ConnectionTimer::new(clock))
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file handles, or the peer left before accept:
                    // wait a moment rather than spin (what axum::serve does).
                    if !is_connection_error(&e) {
                        tracing::warn!(error = %e, "could not accept a connection; retrying in a second");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let counted_per_client = !limits.trusted_proxies.contains(peer.ip());
        let Some(admitted) = open.admit(peer.ip(), counted_per_client) else {
            if let Some(m) = &metrics {
                m.connection_refused();
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(axum::body::Body::new)
            });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            if let Some(m) = &metrics {
                m.connection_opened();
            }
            if let Err(e) = connection.await {
                if e.is_timeout() {
                    if let Some(m) = &metrics {
                        m.connection_timed_out();
                    }
                    tracing::debug!(peer = %peer, "closed a connection that sent no request in time");
                } else {
                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                }
            }
            if let Some(m) = &metrics {
                m.connection_closed();
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain) => {
            tracing::warn!("requests still running at shutdown were cut off after {:?}", limits.drain);
        }
    }
}

/// Errors of `accept` that concern one connection only.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Connections open now: the total and per client address.
struct Open {
    max: usize,
    max_per_client: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

impl Open {
    fn new(max: usize, max_per_client: usize) -> Self {
        Self {
            max,
            max_per_client,
            counts: Mutex::default(),
        }
    }

    /// A place for one more connection from `peer`, or None when full.
    fn admit(self: &Arc<Self>, peer: IpAddr, per_client: bool) -> Option<Admitted> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.max {
            return None;
        }
        let peer = client_key(peer);
        if per_client {
            let n = counts.per_client.entry(peer).or_insert(0);
            if *n >= self.max_per_client {
                return None;
            }
            *n += 1;
        }
        counts.total += 1;
        Some(Admitted {
            open: Arc::clone(self),
            peer: per_client.then_some(peer),
        })
    }
}

/// One client for the per-client cap: an IPv4 address, or an IPv6 /64
/// (one host's share: a single machine usually holds a whole /64 and
/// could cycle through it).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Gives its place back when the connection ends.
struct Admitted {
    open: Arc<Open>,
    peer: Option<IpAddr>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.open.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total -= 1;
        if let Some(peer) = self.peer
            && let Some(n) = counts.per_client.get_mut(&peer)
        {
            *n -= 1;
            if *n == 0 {
                counts.per_client.remove(&peer);
            }
        }
    }
}

/// hyper's timer on our clock: tokio's timer for the system clock, the
/// manual clock's sleeps in tests.
#[derive(Clone)]
enum ConnectionTimer {
    System(TokioTimer),
    Manual {
        clock: Clock,
        /// The same moment on both scales: hyper counts in `Instant`s.
        origin: (Instant, SystemTime),
    },
}

impl ConnectionTimer {
    fn new(clock: Clock) -> Self {
        if clock.is_manual() {
            let origin = (Instant::now(), clock.now_system());
            Self::Manual { clock, origin }
        } else {
            Self::System(TokioTimer::new())
        }
    }
}

impl hyper::rt::Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        match self {
            Self::System(t) => t.sleep(duration),
            Self::Manual { clock, .. } => Box::pin(ManualSleep(
                clock.sleep_until(clock.now_system() + duration),
            )),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        match self {
            Self::System(t) => t.sleep_until(deadline),
            Self::Manual { clock, origin } => {
                let at = origin.1 + deadline.saturating_duration_since(origin.0);
                Box::pin(ManualSleep(clock.sleep_until(at)))
            }
        }
    }

    fn now(&self) -> Instant {
        match self {
            Self::System(_) => Instant::now(),
            Self::Manual { clock, origin } => {
                origin.0
                    + clock
                        .now_system()
                        .duration_since(origin.1)
                        .unwrap_or(Duration::ZERO)
            }
        }
    }
}

struct ManualSleep(crate::clock::ClockSleep);

impl Future for ManualSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for ManualSleep {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_total_cap_holds_and_places_come_back() {
        let open = Arc::new(Open::new(3, 2));
        let a = open.admit(ip("192.0.2.1"), true).unwrap();
        let _b = open.admit(ip("192.0.2.2"), true).unwrap();
        let _c = open.admit(ip("10.0.0.1"), false).unwrap();
        assert!(open.admit(ip("192.0.2.3"), true).is_none(), "full");
        assert!(
            open.admit(ip("10.0.0.1"), false).is_none(),
            "full for proxies too"
        );
        drop(a);
        assert!(open.admit(ip("192.0.2.3"), true).is_some());
    }

    #[test]
    fn the_per_client_cap_counts_an_ipv6_slash_64_as_one_client() {
        let open = Arc::new(Open::new(100, 2));
        let _a = open.admit(ip("2001:db8:1:2::1"), true).unwrap();
        let _b = open.admit(ip("2001:db8:1:2::ffff"), true).unwrap();
        assert!(open.admit(ip("2001:db8:1:2:abcd::9"), true).is_none());
        assert!(
            open.admit(ip("2001:db8:1:3::1"), true).is_some(),
            "another /64"
        );
        // Trusted proxies are not counted per client.
        for _ in 0..5 {
            std::mem::forget(open.admit(ip("2001:db8:1:2::1"), false).unwrap());
        }
    }
}
