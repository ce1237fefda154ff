//! PostgreSQL on a database whose defaults are not ours: Tidings pins what its correctness depends on (READ
//! COMMITTED, recipients locked in one order), so concurrent writes succeed whatever the database's settings;
//! and behind a connection that breaks right after COMMIT, a write that committed is answered as done.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::TestDatabase;
use serde_json::json;
use tidings_server::storage::{
    CreateOutcome, NewNotification, NewRecord, Postgres, Recipients, Record, Storage, UpdateOutcome,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A Tidings storage on a fresh database whose default isolation is REPEATABLE READ, as some operators set it.
async fn on_repeatable_read(test: &str) -> Option<(TestDatabase, Arc<dyn Storage>)> {
    let database = TestDatabase::create(test).await?;
    database
        .admin(&format!("ALTER DATABASE {} SET default_transaction_isolation = 'repeatable read'", database.name))
        .await;
    let storage = Postgres::open(&database.url, Duration::from_secs(60)).await.expect("postgres opens");
    Some((database, Arc::new(storage)))
}

fn order(n: usize) -> NewRecord {
    let data = json!({ "n": n }).as_object().cloned().expect("an object");
    NewRecord { resource_type: "order".to_owned(), id: format!("O-{n}"), owner_id: "alice".to_owned(), data }
}

/// Every event of a type takes the next `seq` from one head row; under REPEATABLE READ, writers that meet there
/// fail with a serialization error. Tidings' transactions run READ COMMITTED, so they all commit.
#[tokio::test]
async fn concurrent_writes_of_one_type_commit_under_a_repeatable_read_default() {
    let Some((_database, storage)) = on_repeatable_read("concurrent_writes_repeatable_read").await else { return };
    let writes: Vec<_> = (0..24)
        .map(|n| {
            let storage = Arc::clone(&storage);
            tokio::spawn(async move { storage.create(order(n), None).await })
        })
        .collect();
    for write in writes {
        write.await.expect("the task ran").expect("every concurrent create commits");
    }
    assert_eq!(storage.head("order").await.expect("head"), 24);
}

/// Notifying `[a, b]` and `[b, a]` at once locks the two users' head rows in opposite orders unless recipients are
/// locked in one order; PostgreSQL then aborts one as a deadlock. A user named twice gets one copy.
#[tokio::test]
async fn crossing_recipient_lists_never_deadlock_and_each_user_gets_one_copy() {
    let Some((_database, storage)) = on_repeatable_read("crossing_recipients").await else { return };
    let note = |n: usize| NewNotification {
        id: format!("NTF-{n}"),
        level: "info".to_owned(),
        title: "hello".to_owned(),
        body: String::new(),
        data: serde_json::Map::new(),
    };
    let sends: Vec<_> = (0..40)
        .map(|n| {
            let storage = Arc::clone(&storage);
            let users: Vec<String> = if n % 2 == 0 { vec!["a", "b", "c"] } else { vec!["c", "b", "a", "b"] }
                .into_iter()
                .map(str::to_owned)
                .collect();
            tokio::spawn(async move { storage.notify(Recipients::Users(users), note(n)).await })
        })
        .collect();
    for send in sends {
        let copies = send.await.expect("the task ran").expect("no deadlock, no serialization failure");
        assert_eq!(copies.len(), 3, "one copy per user: {copies:?}");
    }
    for user in ["a", "b", "c"] {
        assert_eq!(storage.notification_head(user).await.expect("head").seq, 40, "{user}");
    }
}

/// A TCP proxy in front of PostgreSQL that, when armed, passes the next COMMIT on to the server and then cuts
/// the client off before the answer comes back: the commit takes effect, and the client never hears it.
struct CuttingProxy {
    url: String,
    armed: Arc<AtomicBool>,
}

impl CuttingProxy {
    async fn start(database_url: &str) -> CuttingProxy {
        let (head, tail) = database_url.split_once('@').expect("a URL with a user");
        let (authority, path) = tail.split_once('/').expect("a URL with a database");
        let server: SocketAddr = authority.parse().expect("host:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("{head}@{}/{path}", listener.local_addr().expect("addr"));
        let armed = Arc::new(AtomicBool::new(false));
        let trigger = Arc::clone(&armed);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = TcpStream::connect(server).await.expect("postgres");
                tokio::spawn(relay(client, upstream, Arc::clone(&trigger)));
            }
        });
        CuttingProxy { url, armed }
    }

    fn cut_after_next_commit(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

/// Copies bytes both ways. Once armed, the next COMMIT goes on to the server, and the server's answer to it is
/// read and thrown away, which also closes the client's side: the commit took effect, and the client never hears.
async fn relay(client: TcpStream, upstream: TcpStream, armed: Arc<AtomicBool>) {
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = upstream.into_split();
    let cut = Arc::new(AtomicBool::new(false));
    let cutting = Arc::clone(&cut);
    tokio::spawn(async move {
        let mut buffer = vec![0_u8; 64 * 1024];
        while let Ok(n) = server_in.read(&mut buffer).await {
            // The server answered the COMMIT: it has committed. Dropping the client's half hangs up on it.
            if n == 0 || cutting.load(Ordering::SeqCst) || client_out.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buffer = vec![0_u8; 64 * 1024];
    while let Ok(n) = client_in.read(&mut buffer).await {
        let commit = buffer[..n].windows(7).any(|w| w == b"COMMIT\0");
        if commit && armed.swap(false, Ordering::SeqCst) {
            cut.store(true, Ordering::SeqCst);
        }
        if n == 0 || server_out.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
}

fn set_n(n: u64) -> tidings_server::storage::UpdateCheck {
    Box::new(move |current: &Record| {
        let mut data = current.data.clone();
        data.insert("n".to_owned(), json!(n));
        Ok(Some(data))
    })
}

/// The answer to COMMIT is lost after the server committed: the create and the update are answered as done,
/// with their events, and each is stored once.
#[tokio::test]
async fn a_write_whose_commit_answer_was_lost_is_answered_as_done() {
    let Some(database) = TestDatabase::create("lost_commit_answer").await else { return };
    let proxy = CuttingProxy::start(&database.url).await;
    let storage = Postgres::open(&proxy.url, Duration::from_secs(60)).await.expect("postgres through the proxy");
    proxy.cut_after_next_commit();
    let created = storage.create(order(1), None).await;
    assert!(matches!(created, Ok(CreateOutcome::Created(_, ref event)) if event.seq == 1), "{created:?}");
    proxy.cut_after_next_commit();
    let updated = storage.update("order", "O-1", "alice", set_n(2)).await;
    assert!(matches!(updated, Ok(UpdateOutcome::Changed(ref record, _)) if record.version == 2), "{updated:?}");

    let direct = Postgres::open(&database.url, Duration::from_secs(60)).await.expect("postgres");
    assert_eq!(direct.head("order").await.expect("head"), 2, "one event each");
    let stored = direct.get("order", "O-1").await.expect("read").expect("stored");
    assert_eq!((stored.version, stored.data.get("n")), (2, Some(&json!(2))));
}
