//! Serving the router over TCP with limits a slow or hostile client cannot exhaust: a
//! request head must arrive within a timeout, and at most `max_connections` connections are
//! open at once — when the cap is reached, the oldest connection with no request in flight
//! (half-sent heads, idle keep-alives) is closed to make room, so only clients with real work
//! in progress hold a place.
//!
//! The decision of which connection to close is [`Slots`], pure and unit-tested; [`serve`] is
//! the accept loop around it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The `[http]` settings of the configuration file.
///
/// ```toml
/// [http]
/// header_read_timeout_seconds = 10  # a request head must arrive within this time
/// max_connections = 512             # open connections; idle ones are closed to make room
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Seconds a client has to send a complete request head (also bounds idle keep-alives).
    pub header_read_timeout_seconds: u64,
    /// Connections open at once. When reached, the oldest connection without a request in
    /// flight is closed for a new one; when every connection is busy, the new one is refused.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 10,
            max_connections: 512,
        }
    }
}

/// One open connection as the cap sees it.
#[derive(Debug, Default)]
struct Slot {
    /// Requests being answered now (responses whose body is not finished).
    busy: Arc<AtomicUsize>,
    /// Cancelled to close the connection.
    close: CancellationToken,
}

/// The open connections, oldest first, and the cap.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    next_id: u64,
    open: BTreeMap<u64, Slot>,
}

/// What to do with a newly accepted connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Serve it under this id.
    Serve(u64),
    /// Every connection is busy: close the new one.
    Refuse,
}

impl Slots {
    /// No connection open yet; at most `max` (at least 1) at once.
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            next_id: 0,
            open: BTreeMap::new(),
        }
    }

    /// Admits a new connection, closing the oldest idle one when the cap is reached.
    pub fn admit(&mut self) -> Admit {
        if self.open.len() >= self.max {
            let idle = self
                .open
                .iter()
                .find(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id);
            match idle.and_then(|id| self.open.remove(&id)) {
                Some(slot) => slot.close.cancel(),
                None => return Admit::Refuse,
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.open.insert(id, Slot::default());
        Admit::Serve(id)
    }

    /// The busy counter and close signal of connection `id`.
    fn handles(&self, id: u64) -> Option<(Arc<AtomicUsize>, CancellationToken)> {
        self.open
            .get(&id)
            .map(|s| (s.busy.clone(), s.close.clone()))
    }

    /// Forgets a connection that ended.
    pub fn release(&mut self, id: u64) {
        self.open.remove(&id);
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// Decrements a connection's busy count when the response body is dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(busy: &Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        Self(busy.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` (HTTP/1.1) until `shutdown`, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &HttpSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Mutex::new(Slots::new(settings.max_connections)));
    let timeout = Duration::from_secs(settings.header_read_timeout_seconds.max(1));
    let mut tasks = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        while tasks.try_join_next().is_some() {}
        let admitted = {
            let mut slots = slots.lock().expect("slots lock");
            match slots.admit() {
                Admit::Serve(id) => slots.handles(id).map(|h| (id, h)),
                Admit::Refuse => None,
            }
        };
        let Some((id, (busy, close))) = admitted else {
            tracing::warn!(%peer, "every connection is busy; refused a new one");
            continue;
        };
        let (app, slots, stop) = (app.clone(), slots.clone(), shutdown.clone());
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let guard = InFlight::start(&busy);
                let app = app.clone();
                async move {
                    let resp = app.oneshot(req.map(Body::new)).await?;
                    Ok::<_, std::convert::Infallible>(resp.map(|body| {
                        Body::new(body.map_frame(move |frame| {
                            let _held = &guard;
                            frame
                        }))
                    }))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = close.cancelled() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            slots.lock().expect("slots lock").release(id);
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_makes_room_and_busy_ones_are_kept() {
        let mut slots = Slots::new(2);
        assert_eq!(slots.admit(), Admit::Serve(0));
        assert_eq!(slots.admit(), Admit::Serve(1));
        let (busy0, close0) = slots.handles(0).unwrap();
        let (_, close1) = slots.handles(1).unwrap();
        let _working = InFlight::start(&busy0);
        // Connection 0 is answering a request: connection 1 (idle) is closed instead.
        assert_eq!(slots.admit(), Admit::Serve(2));
        assert!(!close0.is_cancelled());
        assert!(close1.is_cancelled());
        assert_eq!(slots.len(), 2);
        let (busy2, _) = slots.handles(2).unwrap();
        let _also = InFlight::start(&busy2);
        assert_eq!(slots.admit(), Admit::Refuse);
        drop(_working);
        assert_eq!(slots.admit(), Admit::Serve(3));
        assert!(close0.is_cancelled());
        slots.release(3);
        assert_eq!(slots.len(), 1);
    }
}
