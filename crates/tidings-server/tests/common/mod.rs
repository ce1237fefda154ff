//! Test helpers: a real Tidings server on an ephemeral port, clients for it, and raw WebSocket frames.

#![allow(dead_code)]

pub mod footprint;
pub mod jwks;
pub mod postgres;
pub mod raw;
pub mod receiver;
pub mod redis;
pub mod rest;
pub mod sse;
pub mod watched;

use std::net::SocketAddr;
use std::time::Duration;

use tidings_client::{Client, Push, Pushes};
use tidings_protocol::{Disconnect, Event, LeaveReason, ServerMessage};
use tidings_server::{Authenticator, Config, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use postgres::TestDatabase;

/// The HS256 secret of test servers.
pub const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes";

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A server running in this process, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    auth: Authenticator,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    data_dir: Option<tempfile::TempDir>,
    database: Option<TestDatabase>,
}

impl TestServer {
    /// A server with the default config, but on 127.0.0.1:0 with a known secret and its own data dir.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Like `start`, after `adjust` has changed the config.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_in(tempfile::tempdir().expect("temp dir"), adjust).await
    }

    /// A server on `data_dir`, after `adjust` has changed the config.
    async fn start_in(data_dir: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.path().to_path_buf(),
            shutdown_timeout_ms: 3_000,
            ..Config::default()
        };
        config.auth.secret = Some(SECRET.to_owned());
        adjust(&mut config);
        let auth = Authenticator::from_config(&config.auth, &config.data_dir).expect("authenticator");
        let server = Server::bind(config).await.expect("server binds");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            url: format!("ws://{addr}/ws"),
            auth,
            stop: Some(stop),
            task: Some(task),
            data_dir: Some(data_dir),
            database: None,
        }
    }

    /// The server's data dir (its SQLite database is `tidings.db` there).
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.as_ref().map_or(std::path::Path::new("."), |dir| dir.path())
    }

    /// Like `start`, on a fresh PostgreSQL database of its own; `None` when PostgreSQL tests are skipped.
    pub async fn start_on_postgres(test: &str) -> Option<TestServer> {
        Self::start_on_postgres_with(test, |_| {}).await
    }

    /// Like `start_on_postgres`, after `adjust` has changed the config.
    pub async fn start_on_postgres_with(test: &str, adjust: impl FnOnce(&mut Config)) -> Option<TestServer> {
        let database = TestDatabase::create(test).await?;
        let url = database.url.clone();
        let mut server = Self::start_with(|config| {
            adjust(config);
            config.storage.url = Some(url);
        })
        .await;
        server.database = Some(database);
        Some(server)
    }

    /// The PostgreSQL database the server stores in, if it is one.
    pub fn database(&self) -> Option<&TestDatabase> {
        self.database.as_ref()
    }

    /// Stops the server and starts a new one on the same data dir and database (a new port).
    pub async fn restart(self) -> TestServer {
        self.restart_with(|_| {}).await
    }

    /// Like `restart`, the new server's config changed by `adjust` (the first one's changes are not kept).
    pub async fn restart_with(mut self, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let data_dir = self.data_dir.take().expect("a data dir");
        let database = self.database.take();
        let url = database.as_ref().map(|database| database.url.clone());
        self.stop().await.expect("stops cleanly");
        let mut server = Self::start_in(data_dir, |config| {
            adjust(config);
            config.storage.url = url;
        })
        .await;
        server.database = database;
        server
    }

    /// A token for `user` with `roles`, valid for `ttl`.
    pub fn token_for(&self, user: &str, roles: &[&str], ttl: Duration) -> String {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        self.auth.mint(user, &roles, ttl).expect("mint")
    }

    /// A token for `user` with `roles` and further `claims` (an object), valid for an hour.
    pub fn token_with(&self, user: &str, roles: &[&str], claims: serde_json::Value) -> String {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let claims = claims.as_object().cloned().unwrap_or_default();
        self.auth.mint_with(user, &roles, claims, Duration::from_secs(3600)).expect("mint")
    }

    /// A token for `user` valid for an hour.
    pub fn token(&self, user: &str) -> String {
        self.token_for(user, &[], Duration::from_secs(3600))
    }

    /// A client that has completed `connect`.
    pub async fn connected(&self) -> (Client, Pushes) {
        let (client, pushes, _) = Client::connect(&self.url).await.expect("connect");
        (client.with_timeout(PATIENCE), pushes)
    }

    /// A client authenticated as `user`.
    pub async fn signed_in(&self, user: &str) -> (Client, Pushes) {
        self.signed_in_as(user, &[]).await
    }

    /// A client authenticated as `user` with `roles`.
    pub async fn signed_in_as(&self, user: &str, roles: &[&str]) -> (Client, Pushes) {
        let (client, pushes) = self.connected().await;
        client.auth(&self.token_for(user, roles, Duration::from_secs(3600))).await.expect("auth succeeds");
        (client, pushes)
    }

    /// Asks the server to shut down and waits for `run` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shut_down().await
    }

    async fn shut_down(&mut self) -> anyhow::Result<()> {
        self.stop.take().map(|s| s.send(()));
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(10), task).await.expect("stops within its bound").expect("no panic")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Sends one HTTP/1.1 request to the server and returns the status and the body.
pub async fn http(server: &TestServer, method: &str, path: &str, json_body: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    let body = json_body.unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// A token for `user` signed with the test secret whose `exp` passed a minute ago.
pub fn expired_token(user: &str) -> String {
    let exp = tidings_protocol::now_ms() / 1000 - 60;
    let claims = serde_json::json!({ "sub": user, "exp": exp });
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("encode")
}

/// Sends `payload` as a message of type `ty` with `request_id`, and returns the reply's type and payload as JSON.
pub async fn exchange(
    client: &Client,
    ty: &str,
    request_id: &str,
    payload: serde_json::Value,
) -> (String, serde_json::Value) {
    let message =
        serde_json::json!({ "type": ty, "timestamp": 1630423456, "requestId": request_id, "payload": payload });
    let reply = client.request_text(request_id, message.to_string()).await.expect("a reply");
    let value: serde_json::Value = serde_json::from_str(&tidings_protocol::encode(&reply)).expect("json");
    (value["type"].as_str().unwrap_or_default().to_owned(), value["payload"].clone())
}

/// Like [`exchange`], for a request that must succeed: returns the reply's payload.
pub async fn call(client: &Client, ty: &str, request_id: &str, payload: serde_json::Value) -> serde_json::Value {
    let (reply_type, reply) = exchange(client, ty, request_id, payload).await;
    assert_ne!(reply_type, "error", "{ty} failed: {reply}");
    reply
}

/// Waits for the next server message that is a push (not a reply), skipping server pings.
pub async fn next_push(pushes: &mut Pushes) -> ServerMessage {
    loop {
        match pushes.next_within(PATIENCE).await {
            Some(Push::Message(envelope)) if matches!(envelope.message, ServerMessage::Ping(_)) => continue,
            Some(Push::Message(envelope)) => {
                assert!(envelope.request_id.is_none(), "a push carries no requestId: {envelope:?}");
                return envelope.message;
            }
            other => panic!("expected a push, got {other:?}"),
        }
    }
}

/// Waits for the server's `disconnect` and the close that follows it, and returns both.
pub async fn expect_disconnect(pushes: &mut Pushes) -> (Disconnect, Option<u16>) {
    let notice = match next_push(pushes).await {
        ServerMessage::Disconnect(notice) => notice,
        other => panic!("expected disconnect, got {other:?}"),
    };
    match pushes.next_within(PATIENCE).await {
        Some(Push::Closed { code, .. }) => (notice, code),
        other => panic!("expected the close after disconnect, got {other:?}"),
    }
}

/// Declares each listed `async fn NAME(server: TestServer)` as two tests, `NAME::sqlite` and `NAME::postgres`, so
/// that one test body checks both storage backends.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::common::TestServer::start().await).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(server) = $crate::common::TestServer::start_on_postgres(stringify!($name)).await {
                    super::$name(server).await;
                }
            }
        }
    )+};
}
#[allow(unused_imports)]
pub(crate) use on_both_backends;

/// Like `on_both_backends!`, with servers whose config `$adjust` (a `fn(&mut Config)`) changed first.
#[allow(unused_macros)]
macro_rules! on_both_backends_with {
    ($adjust:path; $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::common::TestServer::start_with($adjust).await).await;
            }

            #[tokio::test]
            async fn postgres() {
                let server = $crate::common::TestServer::start_on_postgres_with(stringify!($name), $adjust).await;
                if let Some(server) = server {
                    super::$name(server).await;
                }
            }
        }
    )+};
}
#[allow(unused_imports)]
pub(crate) use on_both_backends_with;

/// What a request came to: `ok`, or the error's code.
pub async fn outcome(client: &Client, ty: &str, payload: serde_json::Value) -> String {
    let (reply_type, reply) = exchange(client, ty, "o", payload).await;
    if reply_type == "error" {
        reply["code"].as_str().unwrap_or("?").to_owned()
    } else {
        "ok".to_owned()
    }
}

/// The next event pushed; notifications (an owner hears of a status change) are passed over.
pub async fn next_event(pushes: &mut Pushes) -> Event {
    loop {
        match next_push(pushes).await {
            ServerMessage::Event(event) => return event,
            ServerMessage::Notification(_) => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

/// An event's type, resource id and leave reason, for comparing a run of events at once (with [`expect`]).
pub fn seen(event: &Event) -> (String, String, Option<LeaveReason>) {
    let id = event.id.as_ref().map(|id| id.as_str().to_owned()).unwrap_or_default();
    (event.event_type.as_str().to_owned(), id, event.reason)
}

/// What [`seen`] should say.
pub fn expect(event_type: &str, id: &str, reason: Option<LeaveReason>) -> (String, String, Option<LeaveReason>) {
    (event_type.to_owned(), id.to_owned(), reason)
}
