//! A cluster for the tests: `tidings serve` nodes sharing one PostgreSQL database and one redis-server, writers
//! that create orders, and followers that subscribe and resume on another node when theirs goes away.

#![allow(dead_code)]

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tidings_client::{Client, Push};
use tidings_protocol::{ClientMessage, Create, ResourceType, Seq, ServerMessage, Subscribe, Topic};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::redis::RedisServer;
use super::{Served, TIDINGS};

/// The key every node verifies tokens with, so a token works on any node.
pub const SECRET: &str = "the-cluster-tests-shared-secret-0123456789";

/// The shared parts of a cluster.
pub struct Cluster {
    pub redis: Option<RedisServer>,
    /// Redis's URL, which stays the same across an outage.
    pub redis_url: String,
    pub database: String,
}

impl Cluster {
    /// A fresh database and a redis-server; `None` when the machine is told to skip PostgreSQL or Redis.
    pub fn start(name: &str) -> Option<Cluster> {
        let database = super::postgres_database(name)?;
        let redis = RedisServer::start()?;
        Some(Cluster { redis_url: redis.url(), redis: Some(redis), database })
    }

    /// Starts node `name` of the cluster on a free port.
    pub fn node(&self, name: &str) -> Served {
        let settings = self.node_settings(name);
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Served::start_in(tempfile::tempdir().expect("temp dir"), &settings)
    }

    /// Starts node `name` with the config file `config` (its resource types, say).
    pub fn node_with_config(&self, name: &str, config: &std::path::Path) -> Served {
        let settings = self.node_settings(name);
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Served::start_with_config(config, &settings)
    }

    /// The `TIDINGS_*` settings of node `name`, to start it (or start it again) with more of them.
    pub fn node_settings(&self, name: &str) -> Vec<(&'static str, String)> {
        let redis = self.redis.as_ref().map_or_else(|| self.redis_url.clone(), RedisServer::url);
        vec![
            ("TIDINGS_NODE", name.to_owned()),
            ("TIDINGS_STORAGE__URL", self.database.clone()),
            ("TIDINGS_BROKER__URL", redis),
            // No sweep within a test: what arrives comes through Redis, or from the log after a resync or a gap.
            ("TIDINGS_BROKER__SWEEP_INTERVAL_MS", "600000".to_owned()),
            ("TIDINGS_AUTH__SECRET", SECRET.to_owned()),
            // Writers here go faster than the default per-connection rate allows.
            ("TIDINGS_LIMITS__RATE_PER_SECOND", "1000000".to_owned()),
            ("TIDINGS_LIMITS__RATE_BURST", "1000000".to_owned()),
        ]
    }

    /// Kills Redis (SIGKILL): the broker is out until `end_broker_outage`.
    pub fn start_broker_outage(&mut self) {
        drop(self.redis.take());
    }

    /// Starts Redis again on its port, empty.
    pub fn end_broker_outage(&mut self) {
        let port = self.redis_url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
        self.redis = Some(RedisServer::start_on(port).expect("redis-server starts again"));
    }

    /// Kills Redis and starts a fresh one on the same port: every message in flight is lost.
    pub fn restart_redis(&mut self) {
        let redis = self.redis.take().expect("redis is up");
        self.redis = Some(redis.restart());
    }
}

/// A token for `user`, signed with the cluster's key, valid for ten minutes.
pub fn token(user: &str, roles: &[&str]) -> String {
    token_for(user, roles, "10m")
}

/// A token for `user`, signed with the cluster's key, valid for `ttl` (such as `30s`).
pub fn token_for(user: &str, roles: &[&str], ttl: &str) -> String {
    token_with(user, roles, ttl, &[])
}

/// The same with more claims, each `NAME=VALUE` as `tidings token --claim` takes them.
pub fn token_with(user: &str, roles: &[&str], ttl: &str, claims: &[&str]) -> String {
    let mut command = Command::new(TIDINGS);
    command.args(["token", "--user", user, "--ttl", ttl]).env("TIDINGS_AUTH__SECRET", SECRET);
    for claim in claims {
        command.args(["--claim", claim]);
    }
    for role in roles {
        command.args(["--role", role]);
    }
    let output = command.output().expect("tidings token runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

/// The ws:// URL's HTTP base, for `/status`.
pub fn http_base(ws_url: &str) -> String {
    ws_url.replacen("ws://", "http://", 1).trim_end_matches("/ws").to_owned()
}

/// `GET /status` of a node.
pub fn status(ws_url: &str) -> Value {
    let mut response = ureq::get(&format!("{}/status", http_base(ws_url))).call().expect("GET /status");
    let body = response.body_mut().read_to_string().expect("a body");
    serde_json::from_str(&body).expect("status is JSON")
}

/// The nodes a node hears, as the admin API lists them to an admin (`GET /api/v1/admin/cluster`), sorted.
pub fn nodes_heard(ws_url: &str) -> Vec<String> {
    let url = format!("{}/api/v1/admin/cluster", http_base(ws_url));
    let bearer = format!("Bearer {}", token("root", &["tidings-admin"]));
    let mut response = ureq::get(&url).header("Authorization", &bearer).call().expect("GET /api/v1/admin/cluster");
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().expect("a body")).expect("JSON");
    let nodes = body["nodes"].as_array().expect("nodes").iter();
    let mut names: Vec<String> = nodes.map(|n| n["node"].as_str().expect("a name").to_owned()).collect();
    names.sort();
    names
}

/// A connected, authenticated client.
pub async fn signed_in(url: &str, user: &str, roles: &[&str]) -> (Client, tidings_client::Pushes) {
    let (client, pushes, _) = Client::connect(url).await.expect("connect");
    client.auth(&token(user, roles)).await.expect("auth");
    (client, pushes)
}

/// Creates an order; `None` when the node did not answer (it died).
pub async fn create(client: &Client, n: usize) -> Option<String> {
    let data = json!({ "productId": format!("P{n}"), "quantity": 1 + n % 5, "totalAmount": 1.5 });
    let create = Create {
        resource_type: ResourceType::new("order").expect("type"),
        data: data.as_object().cloned().expect("object"),
    };
    match client.request(ClientMessage::Create(create)).await.ok()? {
        ServerMessage::Create(resource) => Some(resource.id.into_string()),
        other => panic!("a create failed: {other:?}"),
    }
}

/// Subscribes to `order`, after `since` when given; returns the topic's seq and whether the replay is whole.
pub async fn subscribe(client: &Client, since: Option<u64>) -> Option<(u64, Option<bool>)> {
    let topic = Topic::new("order").expect("topic");
    let subscribe = Subscribe { topic, since: since.map(Seq::saturating), query: None, snapshot: None };
    match client.request(ClientMessage::Subscribe(subscribe)).await.ok()? {
        ServerMessage::Subscribe(subscribed) => Some((subscribed.seq.get(), subscribed.recovered)),
        other => panic!("subscribe failed: {other:?}"),
    }
}

/// The `order` topic's seq now, as a fresh subscriber on `url` sees it.
pub async fn head(url: &str) -> u64 {
    let (client, _pushes) = signed_in(url, "auditor", &["admin"]).await;
    subscribe(&client, None).await.expect("subscribed").0
}

/// Writers creating orders through `url` until stopped or their node dies; the count of acknowledged creates.
pub struct Writers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<usize>>,
}

impl Writers {
    pub async fn start(url: &str, count: usize) -> Writers {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        // Each writer is its own user: the client numbers its requestIds from 1 on every connection, and one user
        // repeating a requestId is a retry, which the server answers with the first create.
        static WRITERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        for w in 0..count {
            let user = format!("writer{}", WRITERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let (client, pushes) = signed_in(url, &user, &[]).await;
            let stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                let _pushes = pushes;
                let mut acknowledged = 0;
                while !*stopped.borrow() {
                    if create(&client, w * 1_000_000 + acknowledged).await.is_none() {
                        break;
                    }
                    acknowledged += 1;
                }
                acknowledged
            }));
        }
        Writers { stop, tasks }
    }

    /// Stops them and returns how many creates were acknowledged.
    pub async fn stop(self) -> usize {
        self.stop.send_replace(true);
        let mut total = 0;
        for task in self.tasks {
            total +=
                tokio::time::timeout(Duration::from_secs(20), task).await.expect("writers stop").expect("no panic");
        }
        total
    }
}

/// A subscriber to `order` that, when its connection ends, connects to the next URL and resumes with `since`.
pub struct Follower {
    /// Every event's seq, in the order received.
    pub seqs: Arc<Mutex<Vec<u64>>>,
    /// Every event's resource id and version, in the order received.
    pub changes: Arc<Mutex<Vec<(String, u64)>>>,
    /// The seq subscribed at first: events after it are expected.
    pub start: u64,
    /// The last seq received.
    pub last: watch::Receiver<u64>,
    /// How many times it resumed, and whether every resume was whole.
    pub resumes: Arc<Mutex<Vec<Option<bool>>>>,
    task: JoinHandle<()>,
}

impl Follower {
    pub async fn start(urls: &[String]) -> Follower {
        let (client, pushes) = signed_in(&urls[0], "follower", &["admin"]).await;
        let (start, _) = subscribe(&client, None).await.expect("subscribed");
        let (last_tx, last) = watch::channel(start);
        let seqs: Arc<Mutex<Vec<u64>>> = Arc::default();
        let resumes: Arc<Mutex<Vec<Option<bool>>>> = Arc::default();
        let changes: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
        let (urls, seqs_in, resumes_in) = (urls.to_vec(), Arc::clone(&seqs), Arc::clone(&resumes));
        let changes_in = Arc::clone(&changes);
        let task = tokio::spawn(async move {
            let mut connection = Some((client, pushes));
            let mut next_url = 0;
            loop {
                let (client, mut pushes) = match connection.take() {
                    Some(open) => open,
                    None => {
                        next_url += 1;
                        let url = &urls[next_url % urls.len()];
                        let Ok((client, pushes, _)) = Client::connect(url).await else {
                            // That node is down too; a real client backs off, this one tries the next soon.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        if client.auth(&token("follower", &["admin"])).await.is_err() {
                            continue;
                        }
                        let since = *last_tx.borrow();
                        let Some((_, recovered)) = subscribe(&client, Some(since)).await else { continue };
                        resumes_in.lock().expect("lock").push(recovered);
                        (client, pushes)
                    }
                };
                loop {
                    match pushes.next().await {
                        Some(Push::Message(envelope)) => {
                            match envelope.message {
                                ServerMessage::Event(event) => {
                                    let seq = event.seq.map_or(0, |s| s.get());
                                    seqs_in.lock().expect("lock").push(seq);
                                    let id = event.id.map(|id| id.into_string()).unwrap_or_default();
                                    changes_in.lock().expect("lock").push((id, event.version.map_or(0, |v| v.get())));
                                    last_tx.send_replace(seq);
                                }
                                // The server ended the subscription (its node lost events it could not fill):
                                // subscribe again with `since`, on another connection, as the SDK does.
                                ServerMessage::Unsubscribe(_) => break,
                                _ => {}
                            }
                        }
                        Some(Push::Closed { .. }) | None => break,
                        Some(Push::Unreadable { text, .. }) => panic!("unreadable push: {text}"),
                    }
                }
                drop(client);
            }
        });
        Follower { seqs, changes, start, last, resumes, task }
    }

    /// Waits until it has received `seq`, then checks it got every event after its start exactly once, in order.
    pub async fn assert_complete_through(mut self, seq: u64) {
        let reached = tokio::time::timeout(Duration::from_secs(30), self.last.wait_for(|last| *last >= seq)).await;
        let seqs = self.seqs.lock().expect("lock").clone();
        assert!(reached.is_ok(), "the follower stopped at {:?} of {seq}", seqs.last());
        self.task.abort();
        let expected: Vec<u64> = (self.start + 1..=seq).collect();
        if seqs != expected {
            let missing: Vec<&u64> = expected.iter().filter(|s| !seqs.contains(s)).collect();
            let mut repeated = seqs.clone();
            repeated.sort_unstable();
            repeated.dedup();
            panic!(
                "events after {} through {seq}: {} received, {} expected; missing {:?}; {} repeated",
                self.start,
                seqs.len(),
                expected.len(),
                &missing[..missing.len().min(10)],
                seqs.len() - repeated.len()
            );
        }
        for recovered in self.resumes.lock().expect("lock").iter() {
            assert_eq!(*recovered, Some(true), "every resume replayed the whole gap");
        }
    }

    /// Events received so far.
    pub fn received(&self) -> usize {
        self.seqs.lock().expect("lock").len()
    }
}
