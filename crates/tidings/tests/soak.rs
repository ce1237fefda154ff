//! The soak: mixed load on the real process for a while, with connection churn and a `kill -9` now and then; at
//! the end, no event lost or repeated, every acknowledged write stored once, and the server's memory over time.
//!
//! scripts/test runs it for 20 s with two kills, so that it keeps working; `bench/soak/run` runs it for an hour
//! in release mode and writes bench/soak/REPORT.md from what it measured. Settings (environment):
//! `SOAK_SECONDS` (20), `SOAK_KILL_EVERY_SECONDS` (6), `SOAK_SAMPLE_SECONDS` (1),
//! `SOAK_REPORT` (a path for the JSON report; none by default), and for a cluster: `SOAK_NODES` (1; more runs
//! them on PostgreSQL and Redis, kills them in turn, and clients resume on another node),
//! `SOAK_BROKER_OUTAGE_SECONDS` (0; with a cluster, Redis is killed half way through and started again after
//! this long) and `SOAK_RETAIN_COUNT` (events kept per type; small, so that pruning happens under load).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{signed_in, Cluster, Follower, SECRET};
use common::Served;
use serde_json::{json, Value};
use tidings_client::Client;
use tidings_protocol::{encode, ClientMessage, Create, Delete, Envelope, Read, RequestId, ResourceId, ResourceType};
use tidings_protocol::{ServerMessage, Update};
use tokio::sync::watch;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const SETTINGS: &[(&str, &str)] = &[
    ("TIDINGS_AUTH__SECRET", SECRET),
    ("TIDINGS_LIMITS__RATE_PER_SECOND", "1000000"),
    ("TIDINGS_LIMITS__RATE_BURST", "1000000"),
];

/// One sample of the server process.
#[derive(Clone, Debug, serde::Serialize)]
struct Sample {
    seconds: u64,
    /// Which node (0 on a single server).
    node: usize,
    /// Which process of that node: each kill starts a new one.
    lifetime: usize,
    rss_kib: u64,
    fds: usize,
    connections: u64,
    writes: u64,
}

/// Counters the load keeps.
#[derive(Debug, Default)]
struct Counters {
    creates: AtomicU64,
    updates: AtomicU64,
    deletes: AtomicU64,
    reads: AtomicU64,
    retries: AtomicU64,
    renewals: AtomicU64,
    churn_cycles: AtomicU64,
    interrupted: AtomicU64,
}

/// What one writer saw: per requestId of a create, the order the server acknowledged; the orders it deleted.
#[derive(Debug, Default)]
struct Written {
    created: BTreeMap<String, String>,
    deleted: BTreeSet<String>,
    /// Deletes cut off twice by kills, which may or may not have committed.
    maybe_deleted: BTreeSet<String>,
}

fn order_type() -> ResourceType {
    ResourceType::new("order").expect("type")
}

/// How long the load's tokens live. Short, so that even the 20 s run renews tokens on open connections, as a
/// long-lived client must.
const TOKEN_TTL: Duration = Duration::from_secs(20);

/// A token for `user` and when it was minted; a new one once the last has lived a quarter of its time.
fn token_minted(user: &str) -> (String, Instant) {
    static TOKENS: Mutex<BTreeMap<String, (Instant, String)>> = Mutex::new(BTreeMap::new());
    let mut tokens = TOKENS.lock().expect("lock");
    match tokens.get(user) {
        Some((minted, token)) if minted.elapsed() < TOKEN_TTL / 4 => (token.clone(), *minted),
        _ => {
            let ttl = format!("{}s", TOKEN_TTL.as_secs());
            let token = common::cluster::token_for(user, &[], &ttl);
            tokens.insert(user.to_owned(), (Instant::now(), token.clone()));
            (token, Instant::now())
        }
    }
}

fn token(user: &str) -> String {
    token_minted(user).0
}

/// Sends a fresh token on the open connection once the token it holds (minted at `minted`) has lived half its
/// time, well before the server would count it expired.
async fn renew(client: &Client, user: &str, minted: &mut Instant, counters: &Counters) -> bool {
    if minted.elapsed() < TOKEN_TTL / 2 {
        return true;
    }
    let (token, at) = token_minted(user);
    *minted = at;
    counters.renewals.fetch_add(1, Ordering::Relaxed);
    client.auth(&token).await.is_ok()
}

/// A signed-in client, once the server answers again.
async fn reconnect(url: &str, user: &str, stop: &watch::Receiver<bool>) -> Option<Client> {
    loop {
        if *stop.borrow() {
            return None;
        }
        if let Ok((client, _pushes, _)) = Client::connect(url).await {
            if client.auth(&token(user)).await.is_ok() {
                return Some(client);
            }
        }
        // The server is restarting; a real client backs off, this one looks again shortly.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates, updates and deletes its own orders at a steady pace. A create whose reply was lost to a kill is sent
/// again with the same requestId after reconnecting, and must come back as the same order.
async fn writer(
    url: String,
    user: String,
    pace: Duration,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
) -> Written {
    let mut written = Written::default();
    let mut client = reconnect(&url, &user, &stop).await;
    let mut tick = tokio::time::interval(pace);
    let mut n = 0_u64;
    let mut signed_in = Instant::now() - TOKEN_TTL / 4;
    while let Some(current) = &client {
        tick.tick().await;
        if *stop.borrow() {
            break;
        }
        if !renew(current, &user, &mut signed_in, &counters).await {
            counters.interrupted.fetch_add(1, Ordering::Relaxed);
            client = reconnect(&url, &user, &stop).await;
            signed_in = Instant::now() - TOKEN_TTL / 4;
            continue;
        }
        let request_id = format!("{user}-{n}");
        let data = json!({ "productId": format!("P{n}"), "quantity": 1 + n % 5, "totalAmount": 2.5 });
        let create = ClientMessage::Create(Create {
            resource_type: order_type(),
            data: data.as_object().cloned().expect("object"),
        });
        let text = encode(&Envelope::now(RequestId::new(&request_id).ok(), create));
        let id = match current.request_text(&request_id, text.clone()).await {
            Ok(Envelope { message: ServerMessage::Create(resource), .. }) => resource.id.into_string(),
            Ok(other) => panic!("a create failed: {other:?}"),
            Err(_) => {
                counters.interrupted.fetch_add(1, Ordering::Relaxed);
                client = reconnect(&url, &user, &stop).await;
                signed_in = Instant::now() - TOKEN_TTL / 4;
                let Some(retrying) = &client else { break };
                counters.retries.fetch_add(1, Ordering::Relaxed);
                match retrying.request_text(&request_id, text).await {
                    Ok(Envelope { message: ServerMessage::Create(resource), .. }) => resource.id.into_string(),
                    // Killed again before the retry was answered: the next round reconnects.
                    _ => continue,
                }
            }
        };
        if let Some(first) = written.created.insert(request_id.clone(), id.clone()) {
            assert_eq!(first, id, "a retried create made a second order");
        }
        counters.creates.fetch_add(1, Ordering::Relaxed);
        n += 1;
        let Some(current) = &client else { break };
        let update = Update {
            resource_type: order_type(),
            id: ResourceId::new(id.clone()).expect("id"),
            patch: json!({ "quantity": 9 }).as_object().cloned().expect("object"),
            expected_version: None,
        };
        if current.request(ClientMessage::Update(update)).await.is_ok() {
            counters.updates.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.interrupted.fetch_add(1, Ordering::Relaxed);
            client = reconnect(&url, &user, &stop).await;
            signed_in = Instant::now() - TOKEN_TTL / 4;
            continue;
        }
        if n % 4 == 0 {
            let delete = Delete {
                resource_type: order_type(),
                id: ResourceId::new(id.clone()).expect("id"),
                expected_version: None,
            };
            if current.request(ClientMessage::Delete(delete.clone())).await.is_ok() {
                written.deleted.insert(id);
                counters.deletes.fetch_add(1, Ordering::Relaxed);
            } else {
                // Cut off by a kill: it may have committed. Sent again, it answers NOT_FOUND if it had.
                counters.interrupted.fetch_add(1, Ordering::Relaxed);
                client = reconnect(&url, &user, &stop).await;
                signed_in = Instant::now() - TOKEN_TTL / 4;
                let Some(retrying) = &client else { break };
                match retrying.request(ClientMessage::Delete(delete)).await {
                    Ok(_) => {
                        written.deleted.insert(id);
                        counters.deletes.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(tidings_client::ClientError::Server(e)) if e.code == tidings_protocol::ErrorCode::NotFound => {
                        written.deleted.insert(id);
                    }
                    // Killed again: the order is deleted or not, which the count at the end cannot tell.
                    Err(_) => {
                        written.maybe_deleted.insert(id);
                    }
                }
            }
        }
    }
    written
}

/// Lists a page now and then, as a dashboard does.
async fn reader(url: String, pace: Duration, counters: Arc<Counters>, stop: watch::Receiver<bool>) {
    let mut client = reconnect(&url, "reader", &stop).await;
    let mut tick = tokio::time::interval(pace);
    let mut signed_in = Instant::now() - TOKEN_TTL / 4;
    while let Some(current) = &client {
        tick.tick().await;
        if *stop.borrow() {
            return;
        }
        if !renew(current, "reader", &mut signed_in, &counters).await {
            client = reconnect(&url, "reader", &stop).await;
            signed_in = Instant::now() - TOKEN_TTL / 4;
            continue;
        }
        let read = Read {
            resource_type: order_type(),
            id: None,
            filter: None,
            query: None,
            order_by: None,
            limit: None,
            cursor: None,
            fields: None,
            count: None,
        };
        match current.request(ClientMessage::Read(read)).await {
            Ok(ServerMessage::Read(_)) => {
                counters.reads.fetch_add(1, Ordering::Relaxed);
            }
            Ok(other) => panic!("a read failed: {other:?}"),
            Err(_) => {
                client = reconnect(&url, "reader", &stop).await;
                signed_in = Instant::now() - TOKEN_TTL / 4;
            }
        }
    }
}

/// Opens a connection, signs in, subscribes, reads, and closes it, over and over.
async fn churner(url: String, counters: Arc<Counters>, stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let Some(client) = reconnect(&url, "churner", &stop).await else { return };
        let subscribed = common::cluster::subscribe(&client, None).await.is_some();
        let read = Read {
            resource_type: order_type(),
            id: None,
            filter: None,
            query: None,
            order_by: None,
            limit: None,
            cursor: None,
            fields: None,
            count: None,
        };
        if subscribed && client.request(ClientMessage::Read(read)).await.is_ok() {
            counters.churn_cycles.fetch_add(1, Ordering::Relaxed);
        }
        drop(client);
    }
}

/// The process's resident memory and open descriptors.
fn process_footprint(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

/// How many events a follower missed or got twice, against every seq after its start through `head`.
fn lost_and_repeated(follower: &Follower, head: u64) -> (usize, usize) {
    let seqs = follower.seqs.lock().expect("lock").clone();
    let received: BTreeSet<u64> = seqs.iter().copied().collect();
    let lost = (follower.start + 1..=head).filter(|s| !received.contains(s)).count();
    (lost, seqs.len() - received.len())
}

#[test]
fn mixed_load_with_churn_and_kills_loses_and_repeats_nothing() {
    let seconds = setting("SOAK_SECONDS", 20);
    let kill_every = Duration::from_secs(setting("SOAK_KILL_EVERY_SECONDS", 6));
    let sample_every = Duration::from_secs(setting("SOAK_SAMPLE_SECONDS", 1));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");

    let nodes = setting("SOAK_NODES", 1) as usize;
    let outage = Duration::from_secs(setting("SOAK_BROKER_OUTAGE_SECONDS", 0));
    let mut cluster = if nodes > 1 {
        match Cluster::start("soak") {
            Some(cluster) => Some(cluster),
            None => return eprintln!("skipped: a cluster soak needs PostgreSQL and Redis"),
        }
    } else {
        None
    };
    // Each node's settings, kept to start it again after a kill.
    let settings: Vec<Vec<(String, String)>> = (0..nodes)
        .map(|n| {
            let mut own: Vec<(String, String)> = match &cluster {
                Some(cluster) => {
                    cluster.node_settings(&format!("node-{n}")).into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                }
                None => SETTINGS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            };
            if let Ok(count) = std::env::var("SOAK_RETAIN_COUNT") {
                own.push(("TIDINGS_EVENTS__RETAIN_COUNT".to_owned(), count));
                own.push(("TIDINGS_EVENTS__PRUNE_INTERVAL_MS".to_owned(), "1000".to_owned()));
            }
            own
        })
        .collect();
    let start = |n: usize, listen: &str, data_dir: tempfile::TempDir| {
        let own: Vec<(&str, &str)> = settings[n].iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Served::start_on(listen, data_dir, &own)
    };
    let mut served: Vec<Served> =
        (0..nodes).map(|n| start(n, "127.0.0.1:0", tempfile::tempdir().expect("temp dir"))).collect();
    let urls: Vec<String> = served.iter().map(|s| s.url.clone()).collect();
    let addresses: Vec<String> = served.iter().map(Served::address).collect();
    let url = urls[0].clone();
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop) = watch::channel(false);
    let started = Instant::now();

    let (followers, writers, others) = runtime.block_on(async {
        let mut followers = Vec::new();
        for f in 0..3 {
            // Each starts on its own node and resumes on the next when that one goes.
            let mut order = urls.clone();
            order.rotate_left(f % nodes);
            followers.push(Follower::start(&order).await);
        }
        let writers: Vec<_> = (0..4)
            .map(|w| {
                tokio::spawn(writer(
                    urls[w % nodes].clone(),
                    format!("writer{w}"),
                    Duration::from_millis(20),
                    Arc::clone(&counters),
                    stop.clone(),
                ))
            })
            .collect();
        let mut others = Vec::new();
        for r in 0..2 {
            let url = urls[r % nodes].clone();
            others.push(tokio::spawn(reader(
                url.clone(),
                Duration::from_millis(50),
                Arc::clone(&counters),
                stop.clone(),
            )));
            others.push(tokio::spawn(churner(url, Arc::clone(&counters), stop.clone())));
        }
        (followers, writers, others)
    });

    // The supervisor: samples the nodes, kills and restarts them in turn on their schedule (same port, same
    // data), and takes the broker away for a while half way through.
    let mut samples: Vec<Sample> = Vec::new();
    let (mut lifetimes, mut next_kill, mut next_sample) = (vec![0; nodes], started + kill_every, started);
    let mut kills = Vec::new();
    let mut outages = Vec::new();
    let outage_at = started + Duration::from_secs(seconds) / 2;
    while started.elapsed() < Duration::from_secs(seconds) {
        let now = Instant::now();
        if now >= next_sample {
            for (node, server) in served.iter().enumerate() {
                let Some((rss_kib, fds)) = process_footprint(server.child.id()) else { continue };
                let status = common::cluster::status(&server.url);
                samples.push(Sample {
                    seconds: started.elapsed().as_secs(),
                    node,
                    lifetime: lifetimes[node],
                    rss_kib,
                    fds,
                    connections: status["connections"].as_u64().unwrap_or(0),
                    writes: counters.creates.load(Ordering::Relaxed)
                        + counters.updates.load(Ordering::Relaxed)
                        + counters.deletes.load(Ordering::Relaxed),
                });
            }
            next_sample += sample_every;
        }
        if let Some(cluster) = cluster.as_mut().filter(|_| !outage.is_zero()) {
            if outages.is_empty() && now >= outage_at {
                cluster.start_broker_outage();
                outages.push(started.elapsed().as_secs());
            } else if outages.len() == 1 && now >= outage_at + outage {
                cluster.end_broker_outage();
                outages.push(started.elapsed().as_secs());
            }
        }
        if now >= next_kill && started.elapsed() + kill_every / 2 < Duration::from_secs(seconds) {
            let node = kills.len() % nodes;
            let data_dir = served.remove(node).crash();
            kills.push(started.elapsed().as_secs());
            served.insert(node, start(node, &addresses[node], data_dir));
            lifetimes[node] += 1;
            next_kill += kill_every;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let samples_kept = samples.clone();
    let report = runtime.block_on(async {
        stop_tx.send_replace(true);
        let mut written = Vec::new();
        for writer in writers {
            written.push(
                tokio::time::timeout(Duration::from_secs(30), writer).await.expect("writers stop").expect("no panic"),
            );
        }
        for task in others {
            tokio::time::timeout(Duration::from_secs(30), task).await.expect("load stops").expect("no panic");
        }
        let head = common::cluster::head(&url).await;
        // Followers have until then to catch up; what they still lack after that is lost.
        for follower in &followers {
            let mut last = follower.last.clone();
            let _ = tokio::time::timeout(Duration::from_secs(30), last.wait_for(|l| *l >= head)).await;
        }
        let (lost, repeated) =
            followers.iter().map(|f| lost_and_repeated(f, head)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let delivered: usize = followers.iter().map(Follower::received).sum();

        // Every acknowledged create is stored once, unless its delete was acknowledged too.
        let (auditor, _pushes) = signed_in(&url, "auditor", &["admin"]).await;
        let mut stored = BTreeSet::new();
        for order in common::all_orders(&auditor).await {
            assert!(stored.insert(order.id.into_string()), "an order listed twice");
        }
        let mut lost_writes = 0;
        for writes in &written {
            for id in writes.created.values() {
                if !writes.deleted.contains(id) && !writes.maybe_deleted.contains(id) && !stored.contains(id) {
                    lost_writes += 1;
                }
            }
        }
        json!({
            "seconds": seconds,
            "nodes": nodes,
            "kills": kills,
            "broker_outage": outages,
            "retain_count": std::env::var("SOAK_RETAIN_COUNT").ok(),
            "creates": counters.creates.load(Ordering::Relaxed),
            "updates": counters.updates.load(Ordering::Relaxed),
            "deletes": counters.deletes.load(Ordering::Relaxed),
            "reads": counters.reads.load(Ordering::Relaxed),
            "create_retries": counters.retries.load(Ordering::Relaxed),
            "token_renewals": counters.renewals.load(Ordering::Relaxed),
            "requests_interrupted": counters.interrupted.load(Ordering::Relaxed),
            "churn_cycles": counters.churn_cycles.load(Ordering::Relaxed),
            "events": head,
            "events_delivered_to_followers": delivered,
            "follower_resumes": followers.iter().map(|f| f.resumes.lock().expect("lock").len()).sum::<usize>(),
            "events_lost": lost,
            "events_repeated": repeated,
            "acknowledged_writes_lost": lost_writes,
            "deletes_unresolved": written.iter().map(|w| w.maybe_deleted.len()).sum::<usize>(),
            "samples": samples,
        })
    });
    let mut summary = report.clone();
    summary.as_object_mut().expect("object").remove("samples");
    eprintln!("soak: {summary}");
    if let Ok(path) = std::env::var("SOAK_REPORT") {
        std::fs::write(&path, serde_json::to_string_pretty(&report).expect("json")).expect("the report is written");
    }
    assert!(!kills.is_empty() && report["creates"].as_u64() > Some(0), "the soak ran: {summary}");
    assert!(report["token_renewals"].as_u64() > Some(0), "tokens were renewed on open connections: {summary}");
    // On one server every follower resumes after every kill; in a cluster, at least the one on the killed node.
    let resumes_per_kill = if nodes == 1 { 3 } else { 1 };
    assert!(
        report["follower_resumes"].as_u64() >= Some(resumes_per_kill * kills.len() as u64),
        "followers resumed after each kill: {summary}"
    );
    assert_eq!(report["events_lost"], Value::from(0), "{summary}");
    assert_eq!(report["events_repeated"], Value::from(0), "{summary}");
    assert_eq!(report["acknowledged_writes_lost"], Value::from(0), "{summary}");
    // Memory is flat when, in each lifetime of the process, it stops growing once warm: the last sample is within
    // a quarter (plus 16 MiB of slack for the allocator) of the first one taken a minute in. Lifetimes shorter
    // than three minutes, as in the 20 s run, say nothing either way.
    let processes: BTreeSet<(usize, usize)> = samples_kept.iter().map(|s| (s.node, s.lifetime)).collect();
    for (node, lifetime) in processes {
        let own: Vec<&Sample> = samples_kept.iter().filter(|s| (s.node, s.lifetime) == (node, lifetime)).collect();
        let (Some(first), Some(last)) = (own.first(), own.last()) else { continue };
        if last.seconds - first.seconds < 180 {
            continue;
        }
        let warm = own.iter().find(|s| s.seconds >= first.seconds + 60).expect("a sample after a minute");
        assert!(
            last.rss_kib <= warm.rss_kib + warm.rss_kib / 4 + 16 * 1024,
            "node {node}, lifetime {lifetime}: memory grew from {} KiB to {} KiB",
            warm.rss_kib,
            last.rss_kib
        );
    }
}
