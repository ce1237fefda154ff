//! Acknowledged writes survive `kill -9`: a create storm against the real process, a crash, a restart, a count.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Served;
use serde_json::{json, Value};
use tidings_client::Client;
use tidings_protocol::{encode, ClientMessage, Create, Read, ResourceType, ServerMessage};
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

async fn all_orders(client: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let read = Read {
            resource_type: ResourceType::new("order").expect("type"),
            id: None,
            filter: None,
            order_by: None,
            limit: tidings_protocol::Limit::new(100).ok(),
            cursor,
        };
        let ServerMessage::Read(tidings_protocol::ReadResult::List(page)) =
            client.request(ClientMessage::Read(read)).await.expect("list")
        else {
            panic!("a list page")
        };
        ids.extend(page.items.into_iter().map(|r| r.id.into_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
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
        let stored = all_orders(&client).await;
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
        let after_retries = all_orders(&client).await;
        assert_eq!(after_retries.len(), sent.len(), "one order per requestId, however often it was sent");
        assert!(acked.len() >= KILL_AFTER);
        let listed: Value =
            json!({ "acknowledged": acked.len(), "sent": sent.len(), "stored_before_retries": stored.len() });
        eprintln!("durability: {listed}");
    });
}
