//! A webhook endpoint for tests: a real HTTP server on loopback that records every request and, on demand, fails
//! (HTTP 500), or answers only after a delay (slower than a hook's timeout, to time it out).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::sync::watch;

use super::PATIENCE;

/// One request as the endpoint got it.
#[derive(Clone, Debug)]
pub struct Received {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    /// The body, as sent.
    pub body: String,
    /// Whether the endpoint answered 2xx (a failed or timed-out request is recorded too).
    pub accepted: bool,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    /// The event's `seq`.
    pub fn seq(&self) -> u64 {
        self.json()["payload"]["seq"].as_u64().expect("an event with a seq")
    }
}

#[derive(Debug, Default)]
struct State {
    received: Mutex<Vec<Received>>,
    /// Requests to fail before answering 2xx again; `usize::MAX`: fail until told otherwise.
    failing: AtomicUsize,
    /// How long to wait before answering the next requests, in ms.
    delay_ms: AtomicU64,
    /// Requests to delay.
    delaying: AtomicUsize,
}

/// The endpoint.
pub struct Receiver {
    pub url: String,
    state: Arc<State>,
    count: watch::Receiver<usize>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(State::default());
        let (tell, count) = watch::channel(0usize);
        let tell = Arc::new(tell);
        let (at, told) = (Arc::clone(&state), Arc::clone(&tell));
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (state, tell) = (Arc::clone(&at), Arc::clone(&told));
                async move {
                    let delayed = state.delaying.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                    let failing = state.failing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                        0 => None,
                        usize::MAX => Some(usize::MAX),
                        n => Some(n - 1),
                    });
                    // A delayed answer comes after the hook gave up waiting: it is not accepted. It is recorded
                    // before the wait, since the server drops the handler when the hook hangs up.
                    let accepted = failing.is_err() && delayed.is_err();
                    let header =
                        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                    let received = Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                        accepted,
                    };
                    let count = {
                        let mut list = state.received.lock().expect("received");
                        list.push(received);
                        list.len()
                    };
                    tell.send_replace(count);
                    if delayed.is_ok() {
                        tokio::time::sleep(Duration::from_millis(state.delay_ms.load(Ordering::SeqCst))).await;
                    }
                    if accepted {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, state, count }
    }

    /// Fails the next `n` requests with HTTP 500 (`usize::MAX`: every request, until `recover`).
    pub fn fail(&self, n: usize) {
        self.state.failing.store(n, Ordering::SeqCst);
    }

    /// Answers 2xx again.
    pub fn recover(&self) {
        self.state.failing.store(0, Ordering::SeqCst);
    }

    /// Answers the next `n` requests only after `delay` (recorded as not accepted: meant to outlast a timeout).
    pub fn delay(&self, n: usize, delay: Duration) {
        self.state.delay_ms.store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
        self.state.delaying.store(n, Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("received").clone()
    }

    /// The accepted requests so far.
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.accepted).collect()
    }

    /// Waits until `check` holds for the requests so far (re-checked on every request), within `PATIENCE` times
    /// `patience`.
    pub async fn until(&self, patience: u32, what: &str, check: impl Fn(&[Received]) -> bool) {
        let mut count = self.count.clone();
        let waited = tokio::time::timeout(PATIENCE * patience, async {
            loop {
                if check(&self.received()) {
                    return;
                }
                if count.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(waited.is_ok() && check(&self.received()), "waited in vain for {what}: {:#?}", self.received());
    }
}
