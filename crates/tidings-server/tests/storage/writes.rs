//! The storage contract for writes: each change with its event, receipts for retries, checks inside the
//! transaction, taken ids, panicking checks, and what survives a reopen.

use super::*;

pub(crate) async fn creates_reads_updates_and_deletes_with_an_event_each(storage: Arc<dyn Storage>) {
    let (record, event) = create(&storage, "order", "ORD-1", json!({ "quantity": 2, "note": "first" })).await;
    assert_eq!((record.version, record.owner_id.as_str(), record.created_at), (1, "alice", record.updated_at));
    assert_eq!((event.seq, event.kind, event.version, event.actor.as_str()), (1, EventKind::Created, 1, "alice"));
    assert_eq!(event.data, record.data);
    assert_eq!(storage.get("order", "ORD-1").await.expect("get"), Some(record.clone()));
    assert_eq!(storage.get("order", "ORD-2").await.expect("get"), None);
    assert_eq!(storage.get("invoice", "ORD-1").await.expect("get"), None, "ids belong to their type");

    let changed = storage.update("order", "ORD-1", "bob", set("quantity", json!(5))).await.expect("updated");
    let UpdateOutcome::Changed(updated, event) = changed else { panic!("expected a change: {changed:?}") };
    assert_eq!(
        (updated.version, updated.data["quantity"].clone(), updated.created_at),
        (2, json!(5), record.created_at)
    );
    assert!(updated.updated_at >= record.updated_at);
    assert_eq!((event.seq, event.kind, event.version, event.actor.as_str()), (2, EventKind::Updated, 2, "bob"));
    assert_eq!(storage.get("order", "ORD-1").await.expect("get"), Some(updated.clone()));

    let same = storage.update("order", "ORD-1", "bob", Box::new(|_| Ok(None))).await.expect("no change");
    assert_eq!(same, UpdateOutcome::Unchanged(updated.clone()));
    assert_eq!(storage.head("order").await.expect("head"), 2, "no change, no event");

    let deleted = storage.delete("order", "ORD-1", "carol", Box::new(|_| Ok(()))).await.expect("deleted");
    assert_eq!((deleted.seq, deleted.kind, deleted.version), (3, EventKind::Deleted, 3));
    assert_eq!((deleted.data, deleted.owner_id.as_str()), (updated.data, "alice"), "the data before the deletion");
    assert_eq!(storage.get("order", "ORD-1").await.expect("get"), None);

    let missing = storage.update("order", "ORD-1", "bob", set("quantity", json!(1))).await;
    assert!(matches!(missing, Err(StorageError::NotFound)), "{missing:?}");
    let missing = storage.delete("order", "ORD-1", "bob", Box::new(|_| Ok(()))).await;
    assert!(matches!(missing, Err(StorageError::NotFound)), "{missing:?}");
    storage.ping().await.expect("ping");
}

pub(crate) async fn events_come_in_order_with_consecutive_seqs_per_type(storage: Arc<dyn Storage>) {
    assert_eq!(storage.head("order").await.expect("head"), 0, "no events yet");
    for n in 1..=4 {
        create(&storage, "order", &format!("ORD-{n}"), json!({ "n": n })).await;
        create(&storage, "invoice", &format!("INV-{n}"), json!({ "n": n })).await;
    }
    for n in 0..3 {
        storage.update("order", "ORD-2", "alice", set("n", json!(10 + n))).await.expect("updated");
    }
    storage.delete("order", "ORD-2", "alice", Box::new(|_| Ok(()))).await.expect("deleted");
    assert_eq!((storage.head("order").await.expect("head"), storage.head("invoice").await.expect("head")), (8, 4));

    let orders = storage.events_after("order", None, 0, 100).await.expect("events");
    let seqs: Vec<u64> = orders.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    let kinds: Vec<(&str, EventKind)> = orders.iter().map(|e| (e.id.as_str(), e.kind)).collect();
    assert_eq!(
        kinds[4..],
        [
            ("ORD-2", EventKind::Updated),
            ("ORD-2", EventKind::Updated),
            ("ORD-2", EventKind::Updated),
            ("ORD-2", EventKind::Deleted)
        ]
    );
    assert!(orders.iter().all(|e| e.resource_type == "order"));

    let page = storage.events_after("order", None, 3, 2).await.expect("events");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5], "after 3, at most 2");
    let of_one = storage.events_after("order", Some("ORD-2"), 1, 100).await.expect("events");
    assert_eq!(of_one.iter().map(|e| e.version).collect::<Vec<_>>(), [2, 3, 4, 5], "one resource's, by version");
    assert_eq!(of_one[1].data["n"], json!(11));
    let invoices = storage.events_after("invoice", None, 0, 100).await.expect("events");
    assert_eq!(invoices.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4], "each type has its own seqs");
    assert!(storage.events_after("order", None, 8, 100).await.expect("events").is_empty());
}

pub(crate) async fn a_retried_create_replays_its_receipt_and_a_reused_key_is_refused(storage: Arc<dyn Storage>) {
    let data = json!({ "productId": "P1", "quantity": 2 });
    let first = storage
        .create(new_record("order", "ORD-1", "alice", data.clone()), Some(key("alice", "req-1", "order", &data)))
        .await
        .expect("created");
    let CreateOutcome::Created(record, _) = first else { panic!("a new resource: {first:?}") };
    // A retry carries a new id (the service makes one per attempt); the receipt answers with the first one.
    let retry = storage
        .create(new_record("order", "ORD-2", "alice", data.clone()), Some(key("alice", "req-1", "order", &data)))
        .await
        .expect("replayed");
    assert_eq!(retry, CreateOutcome::Replayed(record.clone()));
    assert_eq!(storage.get("order", "ORD-2").await.expect("get"), None, "a replay writes nothing");
    assert_eq!(storage.head("order").await.expect("head"), 1, "a replay has no event");

    let other = json!({ "productId": "P2", "quantity": 1 });
    let reused = storage
        .create(new_record("order", "ORD-3", "alice", other.clone()), Some(key("alice", "req-1", "order", &other)))
        .await;
    assert!(matches!(reused, Err(StorageError::KeyReused)), "{reused:?}");
    assert_eq!(storage.get("order", "ORD-3").await.expect("get"), None);

    let bobs = storage
        .create(new_record("order", "ORD-4", "bob", data.clone()), Some(key("bob", "req-1", "order", &data)))
        .await
        .expect("created");
    assert!(matches!(bobs, CreateOutcome::Created(ref r, _) if r.id == "ORD-4"), "keys are per user: {bobs:?}");
    assert_eq!(storage.head("order").await.expect("head"), 2);
}

pub(crate) async fn concurrent_retries_of_one_create_write_it_once(storage: Arc<dyn Storage>) {
    let data = json!({ "productId": "P1", "quantity": 2 });
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let (storage, data) = (Arc::clone(&storage), data.clone());
            tokio::spawn(async move {
                let key = key("alice", "req-1", "order", &data);
                storage.create(new_record("order", &format!("ORD-{n}"), "alice", data), Some(key)).await
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut replayed = Vec::new();
    for task in tasks {
        match task.await.expect("no panic").expect("created or replayed") {
            CreateOutcome::Created(record, _) => created.push(record),
            CreateOutcome::Replayed(record) => replayed.push(record),
        }
    }
    assert_eq!(created.len(), 1, "one create wins: {created:?}");
    assert!(replayed.iter().all(|r| *r == created[0]), "the others replay it");
    assert_eq!(storage.head("order").await.expect("head"), 1, "one event");
    let all = storage.list(ListQuery { resource_type: "order".to_owned(), ..list_query(OrderKey::Id, false, 100) });
    assert_eq!(all.await.expect("a page").len(), 1, "one resource");
}

pub(crate) async fn a_refused_check_writes_nothing(storage: Arc<dyn Storage>) {
    let (record, _) = create(&storage, "order", "ORD-1", json!({ "quantity": 2 })).await;
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen_by_check = Arc::clone(&seen);
    let refused = storage
        .update(
            "order",
            "ORD-1",
            "bob",
            Box::new(move |current| {
                *seen_by_check.lock().expect("lock") = Some(current.clone());
                Err(refusal())
            }),
        )
        .await;
    assert!(matches!(refused, Err(StorageError::Rejected(ref e)) if e.code == ErrorCode::Conflict), "{refused:?}");
    assert_eq!(seen.lock().expect("lock").as_ref(), Some(&record), "the check saw the stored record");
    let refused = storage.delete("order", "ORD-1", "bob", Box::new(|_| Err(refusal()))).await;
    assert!(matches!(refused, Err(StorageError::Rejected(_))), "{refused:?}");

    assert_eq!(storage.get("order", "ORD-1").await.expect("get"), Some(record), "nothing changed");
    assert_eq!(storage.head("order").await.expect("head"), 1, "no event");
    assert_eq!(storage.events_after("order", None, 0, 100).await.expect("events").len(), 1);
    // The refused changes left nothing behind that would disturb the next one.
    storage.update("order", "ORD-1", "bob", set("quantity", json!(3))).await.expect("updated");
    assert_eq!(storage.head("order").await.expect("head"), 2);
}

pub(crate) async fn checks_see_the_row_as_it_is_written(storage: Arc<dyn Storage>) {
    create(&storage, "counter", "C-1", json!({ "count": 0 })).await;
    // Each update reads the count and writes one more: a check that saw a stale row would lose an increment.
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let storage = Arc::clone(&storage);
            tokio::spawn(async move {
                let increment = Box::new(|current: &Record| {
                    let mut data = current.data.clone();
                    let count = current.data["count"].as_u64().expect("a count");
                    data.insert("count".to_owned(), json!(count + 1));
                    Ok(Some(data))
                });
                storage.update("counter", "C-1", "alice", increment).await.expect("updated")
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for task in tasks {
        let UpdateOutcome::Changed(record, _) = task.await.expect("no panic") else { panic!("a change") };
        versions.insert(record.version);
    }
    assert_eq!(versions, (2..=25).collect(), "every update got its own version");
    let record = storage.get("counter", "C-1").await.expect("get").expect("there");
    assert_eq!((record.version, record.data["count"].clone()), (25, json!(24)));
}

pub(crate) async fn concurrent_creates_get_distinct_consecutive_seqs(storage: Arc<dyn Storage>) {
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let storage = Arc::clone(&storage);
            tokio::spawn(async move {
                let new = new_record("order", &format!("ORD-{n:02}"), &format!("user-{}", n % 4), json!({ "n": n }));
                match storage.create(new, None).await.expect("created") {
                    CreateOutcome::Created(_, event) => event.seq,
                    other => panic!("a new resource: {other:?}"),
                }
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.expect("no panic"));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=64).collect::<Vec<_>>(), "distinct, consecutive, no gaps");
    assert_eq!(storage.head("order").await.expect("head"), 64);
    let events = storage.events_after("order", None, 0, 1000).await.expect("events");
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=64).collect::<Vec<_>>());
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 64, "one event per create");
}

pub(crate) async fn receipts_expire_after_the_window(place: &Place) {
    let storage = place.open_with_window(Duration::from_millis(300)).await;
    let data = json!({ "quantity": 1 });
    let attempt = |id: String| {
        let storage = Arc::clone(&storage);
        let data = data.clone();
        async move {
            let key = key("alice", "req-1", "order", &data);
            storage.create(new_record("order", &id, "alice", data), Some(key)).await.expect("a create")
        }
    };
    assert!(matches!(attempt("ORD-0".to_owned()).await, CreateOutcome::Created(..)));
    // Within the window every retry replays; once it has passed, the same requestId creates anew.
    let started = Instant::now();
    for n in 1.. {
        match attempt(format!("ORD-{n}")).await {
            CreateOutcome::Replayed(record) => assert_eq!(record.id, "ORD-0"),
            CreateOutcome::Created(record, event) => {
                assert_eq!((record.id.clone(), event.seq), (format!("ORD-{n}"), 2));
                let again = attempt("ORD-X".to_owned()).await;
                assert_eq!(again, CreateOutcome::Replayed(record), "the new create left a new receipt");
                break;
            }
        }
        assert!(started.elapsed() < PATIENCE, "the receipt never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn everything_survives_a_reopen(place: &Place) {
    let data = json!({ "quantity": 1, "note": "kept" });
    let storage = place.open().await;
    let CreateOutcome::Created(record, _) = storage
        .create(new_record("order", "ORD-1", "alice", data.clone()), Some(key("alice", "req-1", "order", &data)))
        .await
        .expect("created")
    else {
        panic!("a new resource")
    };
    storage.update("order", "ORD-1", "alice", set("quantity", json!(2))).await.expect("updated");
    drop(storage);

    // Opening again runs the migrations again, which must find nothing to do.
    let storage = place.open().await;
    let stored = storage.get("order", "ORD-1").await.expect("get").expect("kept");
    assert_eq!(
        (stored.version, stored.data["quantity"].clone(), stored.data["note"].clone()),
        (2, json!(2), json!("kept"))
    );
    assert_eq!(storage.head("order").await.expect("head"), 2);
    let retry = storage
        .create(new_record("order", "ORD-2", "alice", data.clone()), Some(key("alice", "req-1", "order", &data)))
        .await
        .expect("replayed");
    assert_eq!(retry, CreateOutcome::Replayed(record));
    let (_, event) = create(&storage, "order", "ORD-3", json!({})).await;
    assert_eq!(event.seq, 3, "seqs go on where they stopped");
}

/// Ids are random, so two creates may draw the same one: storage must say so (the service then draws again), not
/// fail as if the database were broken, and must write nothing.
pub(crate) async fn a_taken_id_is_refused_as_taken_and_writes_nothing(storage: Arc<dyn Storage>) {
    create(&storage, "order", "O-1", json!({ "n": 1 })).await;
    let again = storage.create(new_record("order", "O-1", "bob", json!({ "n": 2 })), None).await;
    assert!(matches!(again, Err(StorageError::IdTaken)), "{again:?}");
    assert_eq!(storage.head("order").await.expect("head"), 1, "the refused create has no event");
    let kept = storage.get("order", "O-1").await.expect("read").expect("the first is there");
    assert_eq!(kept.owner_id, "alice");
}

/// A check is the service's code run inside the transaction; if a bug makes it panic, that write fails and the
/// storage goes on: the next write is stored, and the storage still says it is ready.
pub(crate) async fn a_check_that_panics_fails_its_write_and_harms_nothing_else(storage: Arc<dyn Storage>) {
    create(&storage, "order", "O-1", json!({ "n": 1 })).await;
    let panics: tidings_server::storage::UpdateCheck = Box::new(|_| panic!("a bug in a check"));
    let failed = storage.update("order", "O-1", "alice", panics).await;
    assert!(matches!(failed, Err(StorageError::Internal(_))), "{failed:?}");
    let UpdateOutcome::Changed(record, _) =
        storage.update("order", "O-1", "alice", set("n", json!(2))).await.expect("the next write")
    else {
        panic!("expected a change")
    };
    assert_eq!(record.version, 2, "the failed write changed nothing");
    storage.ping().await.expect("still ready");
}
