//! The embedded default: SQLite in the data dir, WAL, synchronous commits, one writer thread with group commit.
//!
//! All writes go through one thread that owns the write connection. It takes every write waiting in its queue
//! (up to a batch), runs each in a savepoint of one transaction, commits once, and only then answers them all:
//! one fsync serves many clients, and a write is acknowledged only when it is durable. Reads use a few read-only
//! connections, which WAL lets run beside the writer.

mod batch;
mod hooks;
mod list;
mod maintenance;
mod notifications;
mod query;
mod readers;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::batch::{BatchFailure, BatchOutcome, Change};
use super::{
    run_check, Committing, CreateOutcome, DeleteCheck, EventKind, EventRecord, IdempotencyKey, ListQuery, Listed,
    NewRecord, Previous, Record, Storage, StorageError, UpdateCheck, UpdateOutcome, EVENTS_PAGE_BYTES,
};

const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE resources (
        resource_type TEXT NOT NULL, id TEXT NOT NULL, owner_id TEXT NOT NULL, version INTEGER NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (resource_type, id));
    CREATE INDEX resources_by_owner ON resources (resource_type, owner_id, created_at, id);
    CREATE INDEX resources_by_created ON resources (resource_type, created_at, id);
    CREATE TABLE events (
        resource_type TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
        kind TEXT NOT NULL, owner_id TEXT NOT NULL, actor TEXT NOT NULL, data TEXT NOT NULL,
        occurred_at INTEGER NOT NULL, PRIMARY KEY (resource_type, seq));
    CREATE INDEX events_by_resource ON events (resource_type, id, version);
    CREATE TABLE topic_heads (resource_type TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    CREATE TABLE idempotency (
        user_id TEXT NOT NULL, request_id TEXT NOT NULL, fingerprint TEXT NOT NULL, record TEXT NOT NULL,
        created_at INTEGER NOT NULL, PRIMARY KEY (user_id, request_id));
",
    r"
    CREATE TABLE users (user_id TEXT PRIMARY KEY, first_seen INTEGER NOT NULL);
    CREATE TABLE notifications (
        user_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, level TEXT NOT NULL, title TEXT NOT NULL,
        body TEXT NOT NULL, data TEXT NOT NULL, created_at INTEGER NOT NULL, delivered INTEGER NOT NULL,
        PRIMARY KEY (user_id, seq));
    CREATE INDEX notifications_pending ON notifications (user_id, delivered, seq);
    CREATE TABLE notification_heads (user_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    CREATE INDEX events_by_time ON events (occurred_at);
",
    // Maintenance reads by index, never by scanning: receipts by age, and each type's events by age (covering
    // seq, which is what pruning by age needs to find where the kept range starts).
    r"
    CREATE INDEX idempotency_by_age ON idempotency (created_at);
    DROP INDEX events_by_time;
    CREATE INDEX events_by_type_time ON events (resource_type, occurred_at, seq);
",
    // Delivered notifications have a retention: each user's are pruned from the oldest, and the head says how far.
    r"
    ALTER TABLE notification_heads ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX notifications_by_age ON notifications (created_at, user_id);
",
    // Users who stopped signing in are forgotten after a while: each one's last sign-in, found by age. Users known
    // before count as seen now, so that an upgrade forgets no one at once.
    r"
    ALTER TABLE users ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
    UPDATE users SET last_seen = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
    CREATE INDEX users_by_last_seen ON users (last_seen);
",
    // An update's or a deletion's event keeps the resource as it was before (`Previous`, as JSON), so that a
    // query subscription's replay knows what the query matched then.
    r"
    ALTER TABLE events ADD COLUMN previous TEXT;
",
    // Webhooks: where each stands in its type's log, whether it is paused, and which node delivers it.
    r"
    CREATE TABLE hooks (
        name TEXT PRIMARY KEY, cursor INTEGER NOT NULL DEFAULT 0, paused INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0, last_error TEXT, lease_node TEXT, lease_until INTEGER NOT NULL DEFAULT 0);
",
];

#[derive(Debug)]
pub struct Sqlite {
    writes: mpsc::Sender<Write>,
    readers: Arc<Readers>,
    window_ms: u64,
}

use readers::Readers;
use writer::{answer_loop, write_loop, Write, MAX_BATCH};

impl Sqlite {
    /// Opens (creating if needed) the database at `path`, migrates it and starts the writer thread. Opened within a
    /// tokio runtime, it answers writes through a task of that runtime (`writer::answer_loop`), which must then be
    /// the runtime it is used in, as the server's is.
    pub fn open(path: &Path, idempotency_window: Duration) -> anyhow::Result<Sqlite> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        let writer = Connection::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk before it is acknowledged, which is the durability promise of the spec.
        writer.pragma_update(None, "synchronous", "FULL")?;
        // Each write runs in a savepoint, and SQLite copies every page a savepoint changes again into a
        // sub-journal, a temporary file by default: a fifth of a create's time went to writing it. Kept in memory
        // it costs a copy; it only ever serves a rollback inside the open transaction, so durability is the same.
        writer.pragma_update(None, "temp_store", "MEMORY")?;
        writer.busy_timeout(Duration::from_secs(5))?;
        migrate(&writer)?;
        let readers = Arc::new(Readers::open(path)?);
        let (writes, queue) = mpsc::channel(4 * MAX_BATCH);
        let window_ms = u64::try_from(idempotency_window.as_millis()).unwrap_or(u64::MAX);
        let answering = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (answering, batches) = mpsc::unbounded_channel();
            runtime.spawn(answer_loop(batches));
            answering
        });
        std::thread::Builder::new()
            .name("tidings-sqlite-writer".to_owned())
            .spawn(move || write_loop(writer, queue, window_ms, answering))?;
        Ok(Sqlite { writes, readers, window_ms })
    }
}

fn migrate(connection: &Connection) -> anyhow::Result<()> {
    let version: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (n, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = connection.unchecked_transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", n + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Runs one statement through the connection's statement cache: the writer runs the same few statements
/// thousands of times a second, and preparing each anew took a tenth of its time.
/// The `seq` of a type's latest event (0 before the first).
fn type_head(c: &Connection, resource_type: &str) -> Result<u64, StorageError> {
    let mut statement =
        c.prepare_cached("SELECT seq FROM topic_heads WHERE resource_type = ?").map_err(|e| sql_error(&e))?;
    statement
        .query_row([resource_type], |row| row.get(0))
        .optional()
        .map(Option::unwrap_or_default)
        .map_err(|e| sql_error(&e))
}

fn execute(c: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    c.prepare_cached(sql)?.execute(params)
}

/// Reads one row through the statement cache, as `execute` runs a statement: `Connection::query_row` prepares
/// its SQL at every call, which was a tenth of a create's time on the writer thread.
fn query_row<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    c.prepare_cached(sql)?.query_row(params, row)
}

/// The receipt of a create with `key`: its fingerprint, the record as created, and when.
fn receipt_of(c: &Connection, key: &IdempotencyKey) -> Result<Option<(String, String, u64)>, StorageError> {
    query_row(
        c,
        "SELECT fingerprint, record, created_at FROM idempotency WHERE user_id = ? AND request_id = ?",
        params![key.user_id, key.request_id],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )
    .optional()
    .map_err(|e| sql_error(&e))
}

fn create(
    c: &Connection,
    new: NewRecord,
    key: Option<IdempotencyKey>,
    now: u64,
    window_ms: u64,
) -> Result<CreateOutcome, StorageError> {
    if let Some(key) = &key {
        if let Some((fingerprint, record, created_at)) = receipt_of(c, key)? {
            if created_at.saturating_add(window_ms) >= now {
                if fingerprint != key.fingerprint {
                    return Err(StorageError::KeyReused);
                }
                let record: Record =
                    serde_json::from_str(&record).map_err(|e| StorageError::Internal(e.to_string()))?;
                return Ok(CreateOutcome::Replayed(record));
            }
            execute(
                c,
                "DELETE FROM idempotency WHERE user_id = ? AND request_id = ?",
                params![key.user_id, key.request_id],
            )
            .map_err(|e| sql_error(&e))?;
        }
    }
    let record = new.created_at(now);
    execute(
        c,
        "INSERT INTO resources (resource_type, id, owner_id, version, created_at, updated_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![record.resource_type, record.id, record.owner_id, record.version, now, now, json(&record.data)],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            StorageError::IdTaken
        }
        other => sql_error(&other),
    })?;
    let event = append(c, &record, EventKind::Created, &record.owner_id, now, None)?;
    if let Some(key) = key {
        let receipt = serde_json::to_string(&record).map_err(|e| StorageError::Internal(e.to_string()))?;
        execute(
            c,
            "INSERT INTO idempotency (user_id, request_id, fingerprint, record, created_at) VALUES (?, ?, ?, ?, ?)",
            params![key.user_id, key.request_id, key.fingerprint, receipt, now],
        )
        .map_err(|e| sql_error(&e))?;
    }
    Ok(CreateOutcome::Created(record, event))
}

fn update(
    c: &Connection,
    resource_type: &str,
    id: &str,
    actor: &str,
    check: UpdateCheck,
    now: u64,
) -> Result<UpdateOutcome, StorageError> {
    let current = get(c, resource_type, id)?.ok_or(StorageError::NotFound)?;
    let Some(data) = run_check(check, &current)? else {
        return Ok(UpdateOutcome::Unchanged(current));
    };
    let previous = Previous::of(&current);
    let record = Record { version: current.version + 1, updated_at: now.max(current.updated_at), data, ..current };
    execute(
        c,
        "UPDATE resources SET version = ?, updated_at = ?, data = ? WHERE resource_type = ? AND id = ?",
        params![record.version, record.updated_at, json(&record.data), resource_type, id],
    )
    .map_err(|e| sql_error(&e))?;
    let event = append(c, &record, EventKind::Updated, actor, now, Some(previous))?;
    Ok(UpdateOutcome::Changed(record, event))
}

fn delete(
    c: &Connection,
    resource_type: &str,
    id: &str,
    actor: &str,
    check: DeleteCheck,
    now: u64,
) -> Result<EventRecord, StorageError> {
    let current = get(c, resource_type, id)?.ok_or(StorageError::NotFound)?;
    run_check(check, &current)?;
    execute(c, "DELETE FROM resources WHERE resource_type = ? AND id = ?", params![resource_type, id])
        .map_err(|e| sql_error(&e))?;
    let previous = Previous::of(&current);
    let gone = Record { version: current.version + 1, ..current };
    append(c, &gone, EventKind::Deleted, actor, now, Some(previous))
}

/// Appends the event of a change, with the type's next `seq`.
fn append(
    c: &Connection,
    record: &Record,
    kind: EventKind,
    actor: &str,
    now: u64,
    previous: Option<Previous>,
) -> Result<EventRecord, StorageError> {
    let seq: u64 = query_row(
        c,
        "INSERT INTO topic_heads (resource_type, seq) VALUES (?, 1)
         ON CONFLICT (resource_type) DO UPDATE SET seq = seq + 1 RETURNING seq",
        [&record.resource_type],
        |row| row.get(0),
    )
    .map_err(|e| sql_error(&e))?;
    let event = EventRecord::of(record, kind, actor, seq, now, previous);
    let previous = event.previous.as_ref().map(|p| serde_json::to_string(p).unwrap_or_default());
    execute(
        c,
        "INSERT INTO events (resource_type, seq, id, version, kind, owner_id, actor, data, occurred_at, previous) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![event.resource_type, seq, event.id, event.version, kind.as_str(), event.owner_id, actor, json(&event.data), now, previous],
    )
    .map_err(|e| sql_error(&e))?;
    Ok(event)
}

const RECORD_COLUMNS: &str = "resource_type, id, owner_id, version, created_at, updated_at, data";

fn record_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let data: String = row.get(6)?;
    Ok(Record {
        resource_type: row.get(0)?,
        id: row.get(1)?,
        owner_id: row.get(2)?,
        version: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        data: serde_json::from_str(&data)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e)))?,
    })
}

fn get(c: &Connection, resource_type: &str, id: &str) -> Result<Option<Record>, StorageError> {
    const SQL: &str = "SELECT resource_type, id, owner_id, version, created_at, updated_at, data FROM resources \
                       WHERE resource_type = ? AND id = ?";
    let mut statement = c.prepare_cached(SQL).map_err(|e| sql_error(&e))?;
    statement.query_row(params![resource_type, id], record_of).optional().map_err(|e| sql_error(&e))
}

fn json(data: &Map<String, Value>) -> String {
    Value::Object(data.clone()).to_string()
}

fn event_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventRecord> {
    let kind: String = row.get(4)?;
    let data: String = row.get(7)?;
    let bad = |n, e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(n, rusqlite::types::Type::Text, e)
    };
    Ok(EventRecord {
        resource_type: row.get(0)?,
        seq: row.get(1)?,
        id: row.get(2)?,
        version: row.get(3)?,
        kind: EventKind::parse(&kind).ok_or_else(|| bad(4, format!("unknown event kind {kind}").into()))?,
        owner_id: row.get(5)?,
        actor: row.get(6)?,
        data: serde_json::from_str(&data).map_err(|e| bad(7, Box::new(e)))?,
        occurred_at: row.get(8)?,
        previous: match row.get::<_, Option<String>>(9)? {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| bad(9, Box::new(e)))?),
            None => None,
        },
    })
}

/// Busy, locked, full or unreadable databases are unavailable; anything else is a failure.
fn sql_error(error: &rusqlite::Error) -> StorageError {
    use rusqlite::ErrorCode as C;
    match error {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(
                e.code,
                C::DatabaseBusy | C::DatabaseLocked | C::DiskFull | C::SystemIoFailure | C::CannotOpen | C::ReadOnly
            ) =>
        {
            StorageError::Unavailable(error.to_string())
        }
        other => StorageError::Internal(other.to_string()),
    }
}

#[async_trait]
impl Storage for Sqlite {
    async fn get(&self, resource_type: &str, id: &str) -> Result<Option<Record>, StorageError> {
        if let Some(connection) = self.free_reader() {
            return get(&connection, resource_type, id);
        }
        let (resource_type, id) = (resource_type.to_owned(), id.to_owned());
        self.read(move |c| get(c, &resource_type, &id)).await
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<Listed>, StorageError> {
        let (sql, args) = list::list_sql(&query)?;
        self.read(move |c| list::rows(c, &sql, args)).await
    }

    async fn list_at_head(&self, query: ListQuery) -> Result<(Vec<Listed>, u64), StorageError> {
        let (sql, args) = list::list_sql(&query)?;
        self.read(move |c| list::rows_at_head(c, &query.resource_type, &sql, args)).await
    }

    async fn count(&self, query: ListQuery) -> Result<u64, StorageError> {
        let (sql, args) = list::count_sql(&query)?;
        self.read(move |c| {
            let mut statement = c.prepare_cached(&sql).map_err(|e| sql_error(&e))?;
            statement.query_row(rusqlite::params_from_iter(args), |row| row.get(0)).map_err(|e| sql_error(&e))
        })
        .await
    }

    /// Queueing is a send on the writer's channel; the writer commits what it took whatever becomes of the caller.
    fn queues_creates(&self) -> bool {
        true
    }

    async fn queue_create(&self, new: NewRecord, key: Option<IdempotencyKey>) -> Committing<CreateOutcome> {
        let window_ms = self.window_ms;
        self.queue(move |c, now| create(c, new, key, now, window_ms)).await
    }

    async fn batch(
        &self,
        actor: &str,
        changes: Vec<Change>,
        key: Option<IdempotencyKey>,
    ) -> Result<BatchOutcome, BatchFailure> {
        let (actor, window_ms) = (actor.to_owned(), self.window_ms);
        self.write(move |c, now| batch::batch(c, &actor, changes, key, now, window_ms)).await
    }

    async fn update(
        &self,
        resource_type: &str,
        id: &str,
        actor: &str,
        check: UpdateCheck,
    ) -> Result<UpdateOutcome, StorageError> {
        let (resource_type, id, actor) = (resource_type.to_owned(), id.to_owned(), actor.to_owned());
        self.write(move |c, now| update(c, &resource_type, &id, &actor, check, now)).await
    }

    async fn delete(
        &self,
        resource_type: &str,
        id: &str,
        actor: &str,
        check: DeleteCheck,
    ) -> Result<EventRecord, StorageError> {
        let (resource_type, id, actor) = (resource_type.to_owned(), id.to_owned(), actor.to_owned());
        self.write(move |c, now| delete(c, &resource_type, &id, &actor, check, now)).await
    }

    async fn events_after(
        &self,
        resource_type: &str,
        id: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError> {
        let (resource_type, id) = (resource_type.to_owned(), id.map(str::to_owned));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let columns = "resource_type, seq, id, version, kind, owner_id, actor, data, occurred_at, previous";
            let (sql, args) = match &id {
                Some(id) => (
                    format!("SELECT {columns} FROM events WHERE resource_type = ? AND id = ? AND version > ? ORDER BY version LIMIT ?"),
                    vec![SqlValue::Text(resource_type.clone()), SqlValue::Text(id.clone()), SqlValue::Integer(after as i64), SqlValue::Integer(limit)],
                ),
                None => (
                    format!("SELECT {columns} FROM events WHERE resource_type = ? AND seq > ? ORDER BY seq LIMIT ?"),
                    vec![SqlValue::Text(resource_type.clone()), SqlValue::Integer(after as i64), SqlValue::Integer(limit)],
                ),
            };
            let mut statement = c.prepare_cached(&sql).map_err(|e| sql_error(&e))?;
            let mut rows = statement.query(rusqlite::params_from_iter(args)).map_err(|e| sql_error(&e))?;
            let (mut events, mut bytes) = (Vec::new(), 0);
            while bytes < EVENTS_PAGE_BYTES {
                let Some(row) = rows.next().map_err(|e| sql_error(&e))? else { break };
                for column in [7, 9] {
                    bytes += row.get_ref(column).map_err(|e| sql_error(&e))?.as_bytes().map_or(0, <[u8]>::len);
                }
                events.push(event_of(row).map_err(|e| sql_error(&e))?);
            }
            Ok(events)
        })
        .await
    }

    async fn head(&self, resource_type: &str) -> Result<u64, StorageError> {
        // Every subscription reads its type's head: by primary key, on this task when a reader is free.
        if let Some(connection) = self.free_reader() {
            return type_head(&connection, resource_type);
        }
        let resource_type = resource_type.to_owned();
        self.read(move |c| type_head(c, &resource_type)).await
    }

    async fn prune_events(&self, keep: u64, before: u64) -> Result<u64, StorageError> {
        self.prune(keep, before).await
    }

    async fn ensure_indexes(&self, resource_type: &str, paths: &[String]) -> Result<(), StorageError> {
        let statements: Vec<String> = paths.iter().map(|path| query::index_sql(resource_type, path)).collect();
        if statements.is_empty() {
            return Ok(());
        }
        self.write(move |c, _| {
            for sql in &statements {
                c.execute_batch(sql).map_err(|e| sql_error(&e))?;
            }
            Ok(())
        })
        .await
    }

    async fn receipt(&self, key: &IdempotencyKey) -> Result<Option<String>, StorageError> {
        let (key, window_ms) = (key.clone(), self.window_ms);
        self.read(move |c| match receipt_of(c, &key)? {
            Some((_, _, created_at)) if created_at.saturating_add(window_ms) < tidings_protocol::now_ms() => Ok(None),
            Some((fingerprint, _, _)) if fingerprint != key.fingerprint => Err(StorageError::KeyReused),
            Some((_, receipt, _)) => Ok(Some(receipt)),
            None => Ok(None),
        })
        .await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        // Ready means writes can be stored: a writer thread that has stopped makes the server not ready, where
        // answering the read below alone would say ready while every write fails.
        if self.writes.is_closed() {
            return Err(StorageError::Unavailable("the SQLite writer has stopped".to_owned()));
        }
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(|e| sql_error(&e))).await
    }
}
