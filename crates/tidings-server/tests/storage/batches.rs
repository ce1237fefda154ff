//! The storage contract for batches (storage/batch.rs): all or nothing with the failing change's index, events
//! consecutive per type, receipts for retries, and concurrent batches over the same rows in opposite orders, which
//! must neither deadlock nor interleave.

use super::*;
use tidings_server::storage::{BatchOutcome, Change, Outcome};

fn update(resource_type: &str, id: &str, field: &str, value: Value) -> Change {
    Change::Update { resource_type: resource_type.to_owned(), id: id.to_owned(), check: set(field, value) }
}

pub(crate) async fn a_batch_commits_every_change_or_none(storage: Arc<dyn Storage>) {
    create(&storage, "order", "ORD-1", json!({ "n": 1 })).await;
    create(&storage, "stock", "STK-1", json!({ "n": 5 })).await;
    create(&storage, "stock", "STK-2", json!({ "n": 0 })).await;

    // The third change is refused by its check: nothing of the first two is stored, and no event is logged.
    let refuse: tidings_server::storage::UpdateCheck =
        Box::new(|_| Err(ErrorPayload::new(ErrorCode::Conflict, "no, as the test asked")));
    let changes = vec![
        Change::Create(new_record("order", "ORD-2", "alice", json!({ "n": 2 }))),
        update("stock", "STK-1", "n", json!(4)),
        Change::Update { resource_type: "order".to_owned(), id: "ORD-1".to_owned(), check: refuse },
    ];
    let failure = storage.batch("alice", changes, None).await.expect_err("refused");
    assert_eq!(failure.index, Some(2));
    assert!(matches!(failure.error, StorageError::Rejected(_)), "{failure:?}");
    assert_eq!(storage.get("order", "ORD-2").await.expect("get"), None);
    assert_eq!(storage.get("stock", "STK-1").await.expect("get").expect("there").version, 1);
    assert_eq!((storage.head("order").await.expect("head"), storage.head("stock").await.expect("head")), (1, 2));
    let missing = vec![update("stock", "STK-1", "n", json!(3)), update("order", "ORD-9", "n", json!(0))];
    let failure = storage.batch("alice", missing, None).await.expect_err("not found");
    assert!(matches!((failure.index, &failure.error), (Some(1), StorageError::NotFound)), "{failure:?}");

    // All of it, with each type's events at its next seqs, in the order of the changes.
    let changes = vec![
        Change::Create(new_record("order", "ORD-2", "alice", json!({ "n": 2 }))),
        update("stock", "STK-1", "n", json!(4)),
        update("order", "ORD-1", "n", json!(10)),
        Change::Delete { resource_type: "stock".to_owned(), id: "STK-2".to_owned(), check: Box::new(|_| Ok(())) },
    ];
    let BatchOutcome::Applied { outcomes, events } = storage.batch("bob", changes, None).await.expect("applied") else {
        panic!("expected a new batch")
    };
    assert!(matches!(&outcomes[0], Outcome::Created(r) if r.id == "ORD-2" && r.owner_id == "alice"), "{outcomes:?}");
    assert!(matches!(&outcomes[2], Outcome::Updated(r) if r.version == 2 && r.data["n"] == 10), "{outcomes:?}");
    assert!(matches!(&outcomes[3], Outcome::Deleted { version: 2, .. }), "{outcomes:?}");
    let mut seqs: Vec<(String, u64, String)> =
        events.iter().map(|e| (e.resource_type.clone(), e.seq, e.id.clone())).collect();
    seqs.sort();
    assert_eq!(
        seqs,
        [
            ("order".to_owned(), 2, "ORD-2".to_owned()),
            ("order".to_owned(), 3, "ORD-1".to_owned()),
            ("stock".to_owned(), 3, "STK-1".to_owned()),
            ("stock".to_owned(), 4, "STK-2".to_owned()),
        ]
    );
    let actors: Vec<(&str, &str)> = events.iter().map(|e| (e.id.as_str(), e.actor.as_str())).collect();
    assert!(actors.iter().all(|(id, actor)| *actor == if *id == "ORD-2" { "alice" } else { "bob" }), "{actors:?}");
    assert_eq!(storage.events_after("order", None, 1, 10).await.expect("log").len(), 2, "logged as published");
    assert_eq!(storage.get("stock", "STK-2").await.expect("get"), None);
    let repeated = vec![update("stock", "STK-1", "n", json!(1)), update("stock", "STK-1", "n", json!(2))];
    let failure = storage.batch("alice", repeated, None).await.expect_err("one resource twice");
    assert_eq!(failure.index, Some(1));
}

pub(crate) async fn a_retried_batch_replays_its_receipt(storage: Arc<dyn Storage>) {
    create(&storage, "stock", "STK-1", json!({ "n": 5 })).await;
    let key = || key("alice", "batch-1", "(batch)", &json!({ "operations": 1 }));
    let changes = || {
        vec![Change::Create(new_record("order", "ORD-1", "alice", json!({}))), update("stock", "STK-1", "n", json!(4))]
    };
    let BatchOutcome::Applied { outcomes, .. } = storage.batch("alice", changes(), Some(key())).await.expect("applied")
    else {
        panic!("expected a new batch")
    };
    let again = storage.batch("alice", changes(), Some(key())).await.expect("replayed");
    assert_eq!(again, BatchOutcome::Replayed(outcomes), "the first batch's outcomes, and nothing written");
    assert_eq!(storage.head("stock").await.expect("head"), 2);
    let other = IdempotencyKey { fingerprint: "something else".to_owned(), ..key() };
    let reused = storage.batch("alice", changes(), Some(other)).await.expect_err("a reused key");
    assert!(matches!((reused.index, reused.error), (None, StorageError::KeyReused)));
}

pub(crate) async fn batches_over_the_same_rows_in_opposite_orders_neither_deadlock_nor_interleave(
    storage: Arc<dyn Storage>,
) {
    create(&storage, "order", "ORD-A", json!({ "n": 0 })).await;
    create(&storage, "stock", "STK-B", json!({ "n": 0 })).await;
    let bump = |resource_type: &str, id: &str| Change::Update {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        check: Box::new(|current: &Record| {
            let mut data = current.data.clone();
            data.insert("n".to_owned(), json!(current.data["n"].as_u64().unwrap_or(0) + 1));
            Ok(Some(data))
        }),
    };
    let mut tasks = Vec::new();
    for round in 0..20 {
        let changes = if round % 2 == 0 {
            vec![bump("order", "ORD-A"), bump("stock", "STK-B")]
        } else {
            vec![bump("stock", "STK-B"), bump("order", "ORD-A")]
        };
        let batcher = Arc::clone(&storage);
        tasks.push(tokio::spawn(async move {
            batcher.batch("alice", changes, None).await.map(|_| ()).map_err(|failure| format!("{failure:?}"))
        }));
        // A single write of one of the rows in between, which takes its row and then its head.
        let single = Arc::clone(&storage);
        tasks.push(tokio::spawn(async move {
            let touched = single.update("order", "ORD-A", "bob", set("touched", json!(round))).await;
            touched.map(|_| ()).map_err(|error| error.to_string())
        }));
    }
    for task in tasks {
        tokio::time::timeout(PATIENCE, task).await.expect("no deadlock").expect("ran").expect("applied");
    }
    let a = storage.get("order", "ORD-A").await.expect("get").expect("there");
    let b = storage.get("stock", "STK-B").await.expect("get").expect("there");
    assert_eq!((a.data["n"].clone(), b.data["n"].clone()), (json!(20), json!(20)), "every batch counted once");
    assert_eq!(storage.head("order").await.expect("head"), 1 + 20 + 20);
}
