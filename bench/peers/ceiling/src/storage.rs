//! The storage ceiling: the durable work of a create and nothing else, for the ratio "Tidings creates / ceiling".
//!
//! Each create stores what Tidings stores for it, in the same SQLite schema (the resource row, the event row with
//! the type's next `seq`, and the idempotency receipt, with every index Tidings keeps on them), with the same
//! durability: WAL, `synchronous=FULL`, one writer thread that commits every waiting create in one transaction
//! and answers each only after the commit. What it leaves out is everything else a server does: no JSON parsing
//! (the request's `requestId` and `data` are cut out of its text), no validation, no token, no savepoint per
//! create, no events pushed, no receipt looked up before the insert (a conflicting insert is the lookup).

use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection, TransactionBehavior};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// The most creates one transaction carries, as in Tidings.
const MAX_BATCH: usize = 256;

/// Tidings' tables and indexes for resources, events, type heads and receipts (its migrations, folded).
const SCHEMA: &str = r"
    CREATE TABLE IF NOT EXISTS resources (
        resource_type TEXT NOT NULL, id TEXT NOT NULL, owner_id TEXT NOT NULL, version INTEGER NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (resource_type, id));
    CREATE INDEX IF NOT EXISTS resources_by_owner ON resources (resource_type, owner_id, created_at, id);
    CREATE INDEX IF NOT EXISTS resources_by_created ON resources (resource_type, created_at, id);
    CREATE TABLE IF NOT EXISTS events (
        resource_type TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
        kind TEXT NOT NULL, owner_id TEXT NOT NULL, actor TEXT NOT NULL, data TEXT NOT NULL,
        occurred_at INTEGER NOT NULL, previous TEXT, PRIMARY KEY (resource_type, seq));
    CREATE INDEX IF NOT EXISTS events_by_resource ON events (resource_type, id, version);
    CREATE INDEX IF NOT EXISTS events_by_type_time ON events (resource_type, occurred_at, seq);
    CREATE TABLE IF NOT EXISTS topic_heads (resource_type TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS idempotency (
        user_id TEXT NOT NULL, request_id TEXT NOT NULL, fingerprint TEXT NOT NULL, record TEXT NOT NULL,
        created_at INTEGER NOT NULL, PRIMARY KEY (user_id, request_id));
    CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (created_at);
";

/// One create for the writer: the request's id and its data's JSON text, and where its record goes.
pub struct Create {
    request_id: String,
    data: String,
    reply: oneshot::Sender<String>,
}

/// Opens the database in `dir` and starts the writer thread; creates are sent to the returned queue.
pub fn open(dir: &Path) -> anyhow::Result<mpsc::Sender<Create>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let connection = Connection::open(dir.join("peer.db"))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.execute_batch(SCHEMA)?;
    let (creates, queue) = mpsc::channel(4 * MAX_BATCH);
    std::thread::Builder::new().name("ceiling-writer".to_owned()).spawn(move || write_loop(connection, queue))?;
    Ok(creates)
}

/// Group commit: every create waiting (up to a batch) in one transaction, each answered after the commit.
fn write_loop(mut connection: Connection, mut queue: mpsc::Receiver<Create>) {
    let mut next_id: u64 = 0;
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(create) => batch.push(create),
                Err(_) => break,
            }
        }
        let now = now_ms();
        let stored = (|| -> rusqlite::Result<Vec<(oneshot::Sender<String>, String)>> {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut records = Vec::with_capacity(batch.len());
            for create in batch.drain(..) {
                next_id += 1;
                let record = store(&tx, &create, &format!("ORD-{next_id}"), now)?;
                records.push((create.reply, record));
            }
            tx.commit()?;
            Ok(records)
        })();
        match stored {
            Ok(records) => records.into_iter().for_each(|(reply, record)| drop(reply.send(record))),
            // The batch's creates were dropped with it: their senders tell the sessions.
            Err(error) => eprintln!("a batch failed: {error}"),
        }
    }
}

/// Stores one create: the receipt (a conflict means a retry, answered with the first record), the resource, and
/// its event with the type's next `seq`. Returns the record's JSON text.
fn store(c: &Connection, create: &Create, id: &str, now: u64) -> rusqlite::Result<String> {
    const OWNER: &str = "bench";
    let record = format!(
        r#"{{"resourceType":"order","id":"{id}","version":1,"ownerId":"{OWNER}","data":{},"createdAt":{now},"updatedAt":{now}}}"#,
        create.data
    );
    let inserted = c
        .prepare_cached(
            "INSERT INTO idempotency (user_id, request_id, fingerprint, record, created_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![OWNER, create.request_id, "", record, now])?;
    if inserted == 0 {
        return c
            .prepare_cached("SELECT record FROM idempotency WHERE user_id = ? AND request_id = ?")?
            .query_row(params![OWNER, create.request_id], |row| row.get(0));
    }
    c.prepare_cached(
        "INSERT INTO resources (resource_type, id, owner_id, version, created_at, updated_at, data)
         VALUES ('order', ?, ?, 1, ?, ?, ?)",
    )?
    .execute(params![id, OWNER, now, now, create.data])?;
    let seq: u64 = c
        .prepare_cached(
            "INSERT INTO topic_heads (resource_type, seq) VALUES ('order', 1)
             ON CONFLICT (resource_type) DO UPDATE SET seq = seq + 1 RETURNING seq",
        )?
        .query_row([], |row| row.get(0))?;
    c.prepare_cached(
        "INSERT INTO events (resource_type, seq, id, version, kind, owner_id, actor, data, occurred_at)
         VALUES ('order', ?, ?, 1, 'created', ?, ?, ?, ?)",
    )?
    .execute(params![seq, id, OWNER, OWNER, create.data, now])?;
    Ok(record)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The text between `"name":"` and the next quote, if the request has it.
fn string_field<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let start = text.find(&format!(r#""{name}":""#))? + name.len() + 4;
    let length = text[start..].find('"')?;
    Some(&text[start..start + length])
}

/// One connection: `connect`, `auth` and `ping` answered as the echo ceiling does; a `create` stored, then
/// answered with its record.
pub async fn serve(stream: TcpStream, creates: mpsc::Sender<Create>) -> anyhow::Result<()> {
    super::answer_each(stream, |request| store_or_answer(request, creates.clone())).await
}

/// A `create` stored and answered with its record; anything else answered as the echo ceiling does.
async fn store_or_answer(request: Vec<u8>, creates: mpsc::Sender<Create>) -> anyhow::Result<Vec<u8>> {
    let text = String::from_utf8_lossy(&request);
    if !text.contains(r#""type":"create""#) {
        return Ok(super::answer(&request));
    }
    let request_id = string_field(&text, "requestId").unwrap_or_default().to_owned();
    let data = text
        .find(r#""data":"#)
        .and_then(|start| text.get(start + 7..text.len().saturating_sub(2)))
        .context("a create without data")?
        .to_owned();
    let (reply, record) = oneshot::channel();
    creates.send(Create { request_id: request_id.clone(), data, reply }).await?;
    let record = record.await.context("the create's batch failed")?;
    let now = now_ms();
    Ok(format!(r#"{{"type":"create","timestamp":{now},"requestId":"{request_id}","payload":{record}}}"#).into_bytes())
}
