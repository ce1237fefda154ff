//! Acknowledged writes survive `kill -9`: storms against the real process, a crash, a restart, a count. The create
//! storm also retries every request after the restart; the create and update storm has subscribers attached, who
//! resume on the restarted server, and checks the event log against the stored versions.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::Follower;
use common::Served;
use serde_json::{json, Value};
use tidings_client::Client;
use tidings_protocol::{encode, ClientMessage, Create, ResourceId, ResourceType, ServerMessage, Update};
use tokio::sync::watch;

/// Writers creating at once, and the acknowledged creates after which the server is killed.
const WRITERS: usize = 8;
const KILL_AFTER: usize = 150;
/// The storm and the retries go faster than the default per-connection rate limit allows.
const UNLIMITED: &[(&str, &str)] =
    &[("TIDINGS_LIMITS__RATE_PER_SECOND", "1000000"), ("TIDINGS_LIMITS__RATE_BURST", "1000000")];

fn order(n: usize) -> ClientMessage {
    let data = json!({ "productId": format!("P{n}"), "quantity": 1 + n % 5, "totalAmount": n as f64 / 4.0 });
    ClientMessage::Create(Create {
        resource_type: ResourceType::new("order").expect("type"),
        data: data.as_object().cloned().expect("object"),
    })
}

/// Sends a create with a chosen requestId and returns the id of the order, if the server answered.
async fn create(client: &Client, request_id: &str, n: usize) -> Option<String> {
    let text = encode(&tidings_protocol::Envelope::now(tidings_protocol::RequestId::new(request_id).ok(), order(n)));
    match client.request_text(request_id, text).await.ok()?.message {
        ServerMessage::Create(resource) => Some(resource.id.into_string()),
        other => panic!("a create failed without a crash: {other:?}"),
    }
}

#[test]
fn every_acknowledged_create_survives_kill_9_exactly_once_on_sqlite() {
    storm(UNLIMITED);
}

#[test]
fn every_acknowledged_create_survives_kill_9_exactly_once_on_postgres() {
    let Some(url) = common::postgres_database("durability") else { return };
    let mut settings = UNLIMITED.to_vec();
    settings.push(("TIDINGS_STORAGE__URL", &url));
    storm(&settings);
}

/// Runs the storm, the crash, the restart and the count against a server with `settings`.
fn storm(settings: &[(&str, &str)]) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let served = Served::start_in(tempfile::tempdir().expect("temp dir"), settings);
    let token = served.token("alice");
    let url = served.url.clone();

    // requestId -> the id the server acknowledged; every requestId that was sent at all.
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let sent: Arc<Mutex<BTreeSet<(String, usize)>>> = Arc::default();
    let (count_tx, mut count_rx) = watch::channel(0_usize);
    let count_tx = Arc::new(count_tx);

    let writers = runtime.block_on(async {
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (client, _pushes, _) = Client::connect(&url).await.expect("connect");
            client.auth(&token).await.expect("auth");
            let (acked, sent, count_tx) = (Arc::clone(&acked), Arc::clone(&sent), Arc::clone(&count_tx));
            writers.push(tokio::spawn(async move {
                let _pushes = _pushes;
                for n in 0.. {
                    let request_id = format!("w{w}-{n}");
                    sent.lock().expect("lock").insert((request_id.clone(), n));
                    let Some(id) = create(&client, &request_id, n).await else { return };
                    let mut acked = acked.lock().expect("lock");
                    acked.insert(request_id, id);
                    count_tx.send_replace(acked.len());
                }
            }));
        }
        count_rx.wait_for(|count| *count >= KILL_AFTER).await.expect("the writers make progress");
        writers
    });

    // The crash: SIGKILL while every writer has a create in flight.
    let data_dir = served.crash();
    runtime.block_on(async {
        // Each writer ends when its connection dies with the server.
        for writer in writers {
            tokio::time::timeout(Duration::from_secs(20), writer).await.expect("writers stop").expect("no panic");
        }
    });

    let served = Served::start_in(data_dir, settings);
    runtime.block_on(async {
        let (client, _pushes, _) = Client::connect(&served.url).await.expect("connect after restart");
        client.auth(&served.token("alice")).await.expect("auth after restart");
        let stored: Vec<String> = common::all_orders(&client).await.into_iter().map(|r| r.id.into_string()).collect();
        let stored_set: BTreeSet<&String> = stored.iter().collect();
        assert_eq!(stored_set.len(), stored.len(), "no order is stored twice");
        let acked = acked.lock().expect("lock").clone();
        for (request_id, id) in &acked {
            assert!(stored_set.contains(id), "acknowledged create {request_id} ({id}) was lost");
        }

        // Retrying everything that was sent, with the same requestIds, creates nothing twice: acknowledged creates
        // replay their id, and a create that committed without its reply reaching us replays too.
        let sent = sent.lock().expect("lock").clone();
        for (request_id, n) in &sent {
            let id = create(&client, request_id, *n).await.expect("a retry is answered");
            if let Some(first) = acked.get(request_id) {
                assert_eq!(&id, first, "a retry of {request_id} returned another order");
            }
        }
        let after_retries = common::all_orders(&client).await;
        assert_eq!(after_retries.len(), sent.len(), "one order per requestId, however often it was sent");
        assert!(acked.len() >= KILL_AFTER);
        let listed: Value =
            json!({ "acknowledged": acked.len(), "sent": sent.len(), "stored_before_retries": stored.len() });
        eprintln!("durability: {listed}");
    });
}

/// What one writer of the update storm knows at the crash: the version of each of its orders the server
/// acknowledged, and the order whose write was in flight, if any.
#[derive(Debug, Default)]
struct WriterLog {
    acknowledged: BTreeMap<String, u64>,
    in_flight: Option<String>,
}

/// Creates orders and updates each a few times, until its connection dies with the server.
async fn create_and_update(url: String, user: String, count: watch::Sender<usize>) -> WriterLog {
    let (client, _pushes) = common::cluster::signed_in(&url, &user, &[]).await;
    let mut log = WriterLog::default();
    for n in 0.. {
        log.in_flight = None;
        let Some(id) = common::cluster::create(&client, n).await else { return log };
        log.acknowledged.insert(id.clone(), 1);
        count.send_modify(|c| *c += 1);
        for quantity in 2..5 {
            log.in_flight = Some(id.clone());
            let update = Update {
                resource_type: ResourceType::new("order").expect("type"),
                id: ResourceId::new(id.clone()).expect("an id"),
                patch: json!({ "quantity": quantity }).as_object().cloned().expect("object"),
                expected_version: None,
            };
            match client.request(ClientMessage::Update(update)).await {
                Ok(ServerMessage::Update(resource)) => {
                    log.acknowledged.insert(id.clone(), resource.version.get());
                    count.send_modify(|c| *c += 1);
                }
                Ok(other) => panic!("an update failed without a crash: {other:?}"),
                Err(_) => return log,
            }
        }
    }
    log
}

#[test]
fn a_create_and_update_storm_with_subscribers_survives_kill_9_with_no_event_lost_or_repeated() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut settings = UNLIMITED.to_vec();
    settings.push(("TIDINGS_AUTH__SECRET", common::cluster::SECRET));
    let served = Served::start_in(tempfile::tempdir().expect("temp dir"), &settings);
    let (url, address) = (served.url.clone(), served.address());

    let (count, counted) = watch::channel(0_usize);
    let (followers, writers) = runtime.block_on(async {
        let mut followers = Vec::new();
        for _ in 0..3 {
            followers.push(Follower::start(std::slice::from_ref(&url)).await);
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(create_and_update(url.clone(), format!("writer{w}"), count.clone())))
            .collect();
        let mut counted = counted.clone();
        counted.wait_for(|n| *n >= 2 * KILL_AFTER).await.expect("the writers make progress");
        (followers, writers)
    });

    // The crash, with writes in flight and three subscribers attached; then the same data on the same port.
    let data_dir = served.crash();
    let logs: Vec<WriterLog> = runtime.block_on(async {
        let mut logs = Vec::new();
        for writer in writers {
            logs.push(tokio::time::timeout(Duration::from_secs(20), writer).await.expect("writers stop").expect("ok"));
        }
        logs
    });
    let _served = Served::start_on(&address, data_dir, &settings);

    runtime.block_on(async {
        let (auditor, mut pushes) = common::cluster::signed_in(&url, "auditor", &["admin"]).await;

        // Every acknowledged write is there exactly once: creates by id, updates by version. An update in flight
        // at the crash may or may not have committed.
        let mut stored = BTreeMap::new();
        for order in common::all_orders(&auditor).await {
            assert!(stored.insert(order.id.into_string(), order.version.get()).is_none(), "an order listed twice");
        }
        let mut writes = 0;
        for log in &logs {
            for (id, acknowledged) in &log.acknowledged {
                let version = *stored.get(id).unwrap_or_else(|| panic!("acknowledged order {id} was lost"));
                let in_flight = log.in_flight.as_deref() == Some(id.as_str());
                assert!(
                    version == *acknowledged || (in_flight && version == acknowledged + 1),
                    "order {id}: version {version} stored, {acknowledged} acknowledged"
                );
                writes += acknowledged;
            }
        }

        // The event log has no gap, and holds exactly one event per stored version: a replay from the start.
        let (head, recovered) = common::cluster::subscribe(&auditor, Some(0)).await.expect("subscribed");
        assert_eq!(recovered, Some(true), "the whole log is replayed");
        let mut log = Vec::new();
        while log.len() < usize::try_from(head).expect("small") {
            let push = tokio::time::timeout(Duration::from_secs(10), pushes.next()).await.expect("the replay goes on");
            if let Some(tidings_client::Push::Message(envelope)) = push {
                if let ServerMessage::Event(event) = envelope.message {
                    let change = (event.id.expect("an id").into_string(), event.version.expect("a version").get());
                    log.push((event.seq.expect("a seq").get(), change));
                }
            }
        }
        let seqs: Vec<u64> = log.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (1..=head).collect::<Vec<_>>(), "the event log has a gap or a repeat");
        let mut changes: Vec<(String, u64)> = log.iter().map(|(_, change)| change.clone()).collect();
        changes.sort();
        let mut expected: Vec<(String, u64)> =
            stored.iter().flat_map(|(id, version)| (1..=*version).map(move |v| (id.clone(), v))).collect();
        expected.sort();
        assert_eq!(changes, expected, "the log's events are not one per stored change");

        // The subscribers resumed with `since` on the restarted server and got every event once, in order.
        for follower in followers {
            let (start, received) = (follower.start, Arc::clone(&follower.changes));
            follower.assert_complete_through(head).await;
            let from_log: Vec<(String, u64)> =
                log.iter().filter(|(seq, _)| *seq > start).map(|(_, change)| change.clone()).collect();
            assert_eq!(*received.lock().expect("lock"), from_log, "a subscriber's events are not the log's");
        }
        eprintln!("durability: {writes} acknowledged writes, {head} events, subscribers complete");
    });
}
