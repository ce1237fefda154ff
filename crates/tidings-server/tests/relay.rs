//! A node's fan-out stays complete when the broker loses what another node published: the event log fills in.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tidings_protocol::Topic;
use tidings_server::broker::{Bus, MemoryBroker, Publication, Received};
use tidings_server::hub::{Hub, Mailbox, Scope};
use tidings_server::relay::Relay;
use tidings_server::storage::{CreateOutcome, EventRecord, NewRecord, Sqlite, Storage};
use tokio::sync::mpsc;

/// Node `b` of a two-node cluster on one bus and one database, with a subscriber to `order`.
struct NodeB {
    relay: Arc<Relay>,
    deliveries: mpsc::Receiver<tidings_server::hub::Delivery>,
    _mailbox: Mailbox,
}

async fn node_b(storage: &Arc<dyn Storage>, bus: &Bus) -> (NodeB, mpsc::Receiver<Received>) {
    let (broker, inbound) = MemoryBroker::join(bus, "b");
    let hub = Hub::new();
    let relay = Relay::new(Arc::clone(&hub), broker, Arc::clone(storage));
    relay.start_streams(["order"]).await.expect("heads read");
    let (mailbox, deliveries, _slow) = Mailbox::new(1024);
    hub.subscribe(&Topic::new("order").expect("topic"), &mailbox, Scope::All);
    (NodeB { relay, deliveries, _mailbox: mailbox }, inbound)
}

fn storage(dir: &tempfile::TempDir) -> Arc<dyn Storage> {
    Arc::new(Sqlite::open(&dir.path().join("tidings.db"), Duration::from_secs(60)).expect("sqlite opens"))
}

/// Node `a` commits an order; whether its broker message gets anywhere is up to the caller.
async fn commit(storage: &Arc<dyn Storage>, n: usize) -> EventRecord {
    let new = NewRecord {
        resource_type: "order".to_owned(),
        id: format!("ORD-{n}"),
        owner_id: "alice".to_owned(),
        data: json!({ "productId": format!("P{n}"), "quantity": 1, "totalAmount": 1.0, "status": "pending" })
            .as_object()
            .cloned()
            .expect("object"),
    };
    match storage.create(new, None).await.expect("stored") {
        CreateOutcome::Created(_, event) => event,
        CreateOutcome::Replayed(_) => panic!("a fresh create"),
    }
}

async fn next_seq(node: &mut NodeB) -> u64 {
    tokio::time::timeout(Duration::from_secs(5), node.deliveries.recv())
        .await
        .expect("delivered within 5 s")
        .expect("the hub is there")
        .seq()
}

#[tokio::test]
async fn an_event_the_broker_lost_with_nothing_after_it_is_swept_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = storage(&dir);
    let bus = Bus::new();
    let (a, _a_inbound) = MemoryBroker::join(&bus, "a");
    let sweep = Duration::from_millis(50);
    let (mut b, inbound) = node_b(&storage, &bus).await;
    tokio::spawn(Arc::clone(&b.relay).run(inbound, vec!["order".to_owned()], sweep));

    // The first event travels through the broker.
    let first = commit(&storage, 1).await;
    a.publish(Publication::Event { event: first });
    assert_eq!(next_seq(&mut b).await, 1);
    // The second is committed, but its broker message is lost, and nothing comes after it to reveal a gap.
    commit(&storage, 2).await;
    assert_eq!(next_seq(&mut b).await, 2, "the sweep read it from the log");
    // A late copy from the broker is not delivered again.
    let third = commit(&storage, 3).await;
    a.publish(Publication::Event { event: third.clone() });
    assert_eq!(next_seq(&mut b).await, 3);
    a.publish(Publication::Event { event: third });
    assert!(tokio::time::timeout(Duration::from_millis(300), b.deliveries.recv()).await.is_err(), "no repeat");
}

#[tokio::test]
async fn a_hole_before_a_later_event_is_filled_from_the_log_without_waiting_for_a_sweep() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = storage(&dir);
    let bus = Bus::new();
    let (a, _a_inbound) = MemoryBroker::join(&bus, "a");
    // A sweep too slow to matter here.
    let sweep = Duration::from_secs(3600);
    let (mut b, inbound) = node_b(&storage, &bus).await;
    tokio::spawn(Arc::clone(&b.relay).run(inbound, vec!["order".to_owned()], sweep));

    commit(&storage, 1).await;
    commit(&storage, 2).await;
    let third = commit(&storage, 3).await;
    a.publish(Publication::Event { event: third });
    assert_eq!([next_seq(&mut b).await, next_seq(&mut b).await, next_seq(&mut b).await], [1, 2, 3]);
}
