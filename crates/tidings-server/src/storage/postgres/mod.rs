//! PostgreSQL storage: a sqlx pool, one transaction per write, resource data as JSONB beside the event log.
//!
//! Every write is one READ COMMITTED transaction on a pooled connection: the resource row, its event, the type's
//! topic head and the create receipt change together, and the caller hears of the write only after COMMIT has
//! returned. The topic head is taken last, by an upsert that keeps its row locked until the commit: writers of one
//! type therefore get consecutive seqs and commit in seq order (nobody sees seq n+1 before n), while writers of
//! different types never wait on each other. `update` and `delete` read the resource `FOR UPDATE`, so their check
//! sees the row exactly as it is when the change is written.
//!
//! The schema is migrated at open by a small versioned table (`tidings_schema`), under an advisory lock so that
//! servers starting together take turns. Text columns use the "C" collation, so ids and string order keys sort
//! by their bytes, as in SQLite, whatever the database's locale.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Row};
use tidings_protocol::now_ms;

mod batch;
mod events;
mod hooks;
mod list;
mod notifications;
mod query;

use self::events::append;
use super::batch::{BatchFailure, BatchOutcome, Change};
use super::{
    run_check, Committing, CreateOutcome, DeleteCheck, EventKind, EventRecord, IdempotencyKey, ListQuery, Listed,
    NewRecord, Previous, Record, Storage, StorageError, UpdateCheck, UpdateOutcome,
};

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// The most connections one server opens.
const POOL_SIZE: u32 = 16;
/// How long a request waits for a connection before it is answered UNAVAILABLE.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// The advisory lock that serializes migrations (any constant; it is scoped to the database).
const MIGRATION_LOCK: i64 = 0x7469_6469_6e67_7301;
/// How often expired create receipts are swept, in milliseconds.
const SWEEP_EVERY_MS: u64 = 60_000;

const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE resources (
        resource_type TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, owner_id TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, data JSONB NOT NULL,
        PRIMARY KEY (resource_type, id));
    CREATE INDEX resources_by_owner ON resources (resource_type, owner_id, created_at, id);
    CREATE INDEX resources_by_created ON resources (resource_type, created_at, id);
    CREATE TABLE events (
        resource_type TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, id TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL, kind TEXT NOT NULL, owner_id TEXT NOT NULL, actor TEXT NOT NULL, data JSONB NOT NULL,
        occurred_at BIGINT NOT NULL, PRIMARY KEY (resource_type, seq));
    CREATE INDEX events_by_resource ON events (resource_type, id, version);
    CREATE TABLE topic_heads (resource_type TEXT COLLATE "C" PRIMARY KEY, seq BIGINT NOT NULL);
    CREATE TABLE idempotency (
        user_id TEXT NOT NULL, request_id TEXT NOT NULL, fingerprint TEXT NOT NULL, record TEXT NOT NULL,
        created_at BIGINT NOT NULL, PRIMARY KEY (user_id, request_id));
    CREATE INDEX idempotency_by_age ON idempotency (created_at);
"#,
    r#"
    CREATE TABLE users (user_id TEXT COLLATE "C" PRIMARY KEY, first_seen BIGINT NOT NULL);
    CREATE TABLE notifications (
        user_id TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, id TEXT NOT NULL, level TEXT NOT NULL,
        title TEXT NOT NULL, body TEXT NOT NULL, data JSONB NOT NULL, created_at BIGINT NOT NULL,
        delivered BOOLEAN NOT NULL, PRIMARY KEY (user_id, seq));
    CREATE INDEX notifications_pending ON notifications (user_id, delivered, seq);
    CREATE TABLE notification_heads (user_id TEXT COLLATE "C" PRIMARY KEY, seq BIGINT NOT NULL);
    CREATE INDEX events_by_time ON events (occurred_at);
"#,
    r#"
    ALTER TABLE notification_heads ADD COLUMN pruned BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX notifications_by_age ON notifications (created_at, user_id);
"#,
    r#"
    ALTER TABLE users ADD COLUMN last_seen BIGINT NOT NULL DEFAULT ((EXTRACT(EPOCH FROM now()) * 1000)::bigint);
    CREATE INDEX users_by_last_seen ON users (last_seen);
"#,
    // An update's or a deletion's event keeps the resource as it was before, for query subscriptions' replays.
    r#"
    ALTER TABLE events ADD COLUMN previous JSONB;
"#,
    // Webhooks: where each stands in its type's log, whether it is paused, and which node delivers it.
    r#"
    CREATE TABLE hooks (
        name TEXT COLLATE "C" PRIMARY KEY, cursor BIGINT NOT NULL DEFAULT 0, paused BOOLEAN NOT NULL DEFAULT FALSE,
        failures INTEGER NOT NULL DEFAULT 0, last_error TEXT, lease_node TEXT, lease_until BIGINT NOT NULL DEFAULT 0);
"#,
];

const RECORD_COLUMNS: &str = "resource_type, id, owner_id, version, created_at, updated_at, data::text";

/// PostgreSQL storage.
#[derive(Debug)]
pub struct Postgres {
    pool: PgPool,
    window_ms: u64,
    last_sweep: AtomicU64,
}

impl Postgres {
    /// Connects to `url`, migrates the schema and keeps a pool that reconnects by itself.
    pub async fn open(url: &str, idempotency_window: Duration) -> anyhow::Result<Postgres> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("storage.url is not a usable PostgreSQL URL: {e}"))?
            .application_name("tidings")
            // Writers of one type meet on its head row, and recipients of one notification on theirs; under
            // REPEATABLE READ or SERIALIZABLE they would abort each other. The correctness of both rests on READ
            // COMMITTED with row locks, so it is pinned here, whatever the database's default.
            .options([("default_transaction_isolation", "read committed")]);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection the database dropped (restart, failover, terminated backend) is found and replaced
            // before a request gets it, so an outage ends for every request as soon as the database is back.
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?;
        migrate(&pool).await.map_err(|e| anyhow::anyhow!("cannot migrate the PostgreSQL schema: {e}"))?;
        let window_ms = u64::try_from(idempotency_window.as_millis()).unwrap_or(u64::MAX);
        Ok(Postgres { pool, window_ms, last_sweep: AtomicU64::new(0) })
    }

    async fn connection(&self) -> Result<PoolConnection<sqlx::Postgres>, StorageError> {
        self.pool.acquire().await.map_err(no_connection)
    }

    async fn begin(&self) -> Result<Tx, StorageError> {
        self.pool.begin().await.map_err(no_connection)
    }

    /// One try at a create; `Ok(None)` when a concurrent create with the same key committed first.
    async fn try_create(
        &self,
        new: &NewRecord,
        key: Option<&IdempotencyKey>,
        now: u64,
    ) -> Result<Option<CreateOutcome>, StorageError> {
        let mut tx = self.begin().await?;
        if let Some(key) = key {
            if let Some(receipt) = self.receipt_in(&mut tx, key, now).await? {
                let record: Record =
                    serde_json::from_str(&receipt).map_err(|e| StorageError::Internal(e.to_string()))?;
                return Ok(Some(CreateOutcome::Replayed(record)));
            }
        }
        let record = new.clone().created_at(now);
        insert(&mut tx, &record).await?;
        if let Some(key) = key {
            // The receipt is kept as text, so a replay answers byte for byte what the first create answered.
            let receipt = serde_json::to_string(&record).map_err(|e| StorageError::Internal(e.to_string()))?;
            if !keep_receipt(&mut tx, key, receipt, now).await? {
                return Ok(None);
            }
        }
        let event = append(&mut tx, &record, EventKind::Created, &record.owner_id, now, None).await?;
        self.commit(tx, &event).await?;
        Ok(Some(CreateOutcome::Created(record, event)))
    }

    /// The receipt kept for `key`, read inside a write, if it is within the window (`KeyReused` when it was for
    /// something else); one past the window is deleted, so the key may be used again.
    async fn receipt_in(&self, tx: &mut Tx, key: &IdempotencyKey, now: u64) -> Result<Option<String>, StorageError> {
        let receipt = sqlx::query(
            "SELECT fingerprint, record, created_at FROM idempotency WHERE user_id = $1 AND request_id = $2",
        )
        .bind(&key.user_id)
        .bind(&key.request_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?;
        let Some(receipt) = receipt else { return Ok(None) };
        let fingerprint: String = receipt.try_get(0).map_err(db_error)?;
        let created_at = uint(receipt.try_get(2).map_err(db_error)?)?;
        if created_at.saturating_add(self.window_ms) >= now {
            if fingerprint != key.fingerprint {
                return Err(StorageError::KeyReused);
            }
            return receipt.try_get(1).map(Some).map_err(db_error);
        }
        sqlx::query("DELETE FROM idempotency WHERE user_id = $1 AND request_id = $2")
            .bind(&key.user_id)
            .bind(&key.request_id)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        Ok(None)
    }

    /// Commits a write whose event is `event`. When the answer to COMMIT is lost (the connection broke, the
    /// backend was terminated, a failover), the write may have committed: then it is found out on another
    /// connection, so that a stored change is answered as done (and its event published), and one that is not as
    /// UNAVAILABLE; `Unknown` only when even that cannot be learned.
    async fn commit(&self, tx: Tx, event: &EventRecord) -> Result<(), StorageError> {
        let error = match tx.commit().await {
            Ok(()) => return Ok(()),
            Err(error) if answer_lost(&error) => error,
            Err(error) => return Err(db_error(error)),
        };
        match self.committed(event).await {
            Ok(true) => {
                tracing::info!("a commit's answer was lost, and the commit had taken effect: {error}");
                Ok(())
            }
            Ok(false) => Err(db_error(error)),
            Err(lookup) => Err(StorageError::Unknown(format!("{error}; and finding out failed: {lookup}"))),
        }
    }

    /// Whether the transaction that appended `event` committed. It held the lock of its type's head row until it
    /// ended, so taking that lock first waits for a commit still under way; then the event is there or not.
    async fn committed(&self, event: &EventRecord) -> Result<bool, StorageError> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT seq FROM topic_heads WHERE resource_type = $1 FOR SHARE")
            .bind(&event.resource_type)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM events WHERE resource_type = $1 AND seq = $2 AND id = $3")
                .bind(&event.resource_type)
                .bind(int(event.seq)?)
                .bind(&event.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(version == Some(int(event.version)?))
    }

    /// Deletes receipts that can never be replayed again, now and then, off the request's path.
    fn sweep_receipts(&self, now: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SWEEP_EVERY_MS
            || self.last_sweep.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let Ok(before) = i64::try_from(now.saturating_sub(self.window_ms)) else { return };
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let swept = sqlx::query("DELETE FROM idempotency WHERE created_at < $1").bind(before).execute(&pool).await;
            if let Err(e) = swept {
                tracing::debug!("could not sweep expired create receipts: {e}");
            }
        });
    }
}

/// Brings the schema to the latest version, one migration per transaction step, under the migration lock.
async fn migrate(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS tidings_schema (version INTEGER NOT NULL)").execute(&mut *tx).await?;
    let version: Option<i32> =
        sqlx::query_scalar("SELECT version FROM tidings_schema").fetch_optional(&mut *tx).await?;
    if version.is_none() {
        sqlx::query("INSERT INTO tidings_schema (version) VALUES (0)").execute(&mut *tx).await?;
    }
    let done = usize::try_from(version.unwrap_or(0)).unwrap_or(0);
    for (n, migration) in MIGRATIONS.iter().enumerate().skip(done) {
        sqlx::raw_sql(*migration).execute(&mut *tx).await?;
        let version = i32::try_from(n + 1).unwrap_or(i32::MAX);
        sqlx::query("UPDATE tidings_schema SET version = $1").bind(version).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Reads a resource inside a write, locking its row until the commit.
async fn current(tx: &mut Tx, resource_type: &str, id: &str) -> Result<Record, StorageError> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM resources WHERE resource_type = $1 AND id = $2 FOR UPDATE");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(resource_type)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?;
    row.as_ref().map(record_of).transpose()?.ok_or(StorageError::NotFound)
}

/// Inserts a new resource; `IdTaken` when its id is.
async fn insert(tx: &mut Tx, record: &Record) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO resources (resource_type, id, owner_id, version, created_at, updated_at, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
    )
    .bind(&record.resource_type)
    .bind(&record.id)
    .bind(&record.owner_id)
    .bind(int(record.version)?)
    .bind(int(record.created_at)?)
    .bind(int(record.updated_at)?)
    .bind(json(&record.data))
    .execute(&mut **tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(e) if e.constraint() == Some("resources_pkey") => StorageError::IdTaken,
        other => db_error(other),
    })?;
    Ok(())
}

/// Writes a changed resource's version, time and data.
async fn rewrite(tx: &mut Tx, record: &Record) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE resources SET version = $1, updated_at = $2, data = $3::jsonb WHERE resource_type = $4 AND id = $5",
    )
    .bind(int(record.version)?)
    .bind(int(record.updated_at)?)
    .bind(json(&record.data))
    .bind(&record.resource_type)
    .bind(&record.id)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Deletes a resource's row.
async fn remove(tx: &mut Tx, resource_type: &str, id: &str) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM resources WHERE resource_type = $1 AND id = $2")
        .bind(resource_type)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Keeps the receipt of a create or a batch; false when a concurrent one with the same key kept its receipt
/// first (this transaction must then roll back).
async fn keep_receipt(tx: &mut Tx, key: &IdempotencyKey, receipt: String, now: u64) -> Result<bool, StorageError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency (user_id, request_id, fingerprint, record, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&key.user_id)
    .bind(&key.request_id)
    .bind(&key.fingerprint)
    .bind(receipt)
    .bind(int(now)?)
    .execute(&mut **tx)
    .await;
    match inserted {
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("idempotency_pkey") => Ok(false),
        other => other.map(|_| true).map_err(db_error),
    }
}

fn record_of(row: &PgRow) -> Result<Record, StorageError> {
    Ok(Record {
        resource_type: row.try_get(0).map_err(db_error)?,
        id: row.try_get(1).map_err(db_error)?,
        owner_id: row.try_get(2).map_err(db_error)?,
        version: uint(row.try_get(3).map_err(db_error)?)?,
        created_at: uint(row.try_get(4).map_err(db_error)?)?,
        updated_at: uint(row.try_get(5).map_err(db_error)?)?,
        data: object(row.try_get(6).map_err(db_error)?)?,
    })
}

fn object(text: String) -> Result<Map<String, Value>, StorageError> {
    serde_json::from_str(&text).map_err(|e| StorageError::Internal(format!("stored data is not a JSON object: {e}")))
}

fn json(data: &Map<String, Value>) -> String {
    Value::Object(data.clone()).to_string()
}

fn int(n: u64) -> Result<i64, StorageError> {
    i64::try_from(n).map_err(|_| StorageError::Internal(format!("{n} does not fit a BIGINT")))
}

fn uint(n: i64) -> Result<u64, StorageError> {
    u64::try_from(n).map_err(|_| StorageError::Internal(format!("a stored number is negative: {n}")))
}

/// Errors of a request that got no connection: whatever the cause, the database cannot be reached from here.
/// Whether a failed COMMIT may have taken effect: its answer was lost with the connection (or the backend was
/// ended while committing), as opposed to the database refusing it.
fn answer_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

fn no_connection(error: sqlx::Error) -> StorageError {
    StorageError::Unavailable(error.to_string())
}

/// Lost connections, an overloaded, full or stopping database, and conflicts worth retrying are unavailable;
/// anything else is a failure.
fn db_error(error: sqlx::Error) -> StorageError {
    let transient = match &error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE classes: 08 connection exception, 40 transaction rollback (serialization, deadlock),
        // 53 insufficient resources (disk full, out of memory, too many connections), 57 operator intervention
        // (shutdown, terminated backend, cannot connect now), 58 system error (I/O).
        sqlx::Error::Database(e) => {
            e.code().is_some_and(|code| ["08", "40", "53", "57", "58"].iter().any(|class| code.starts_with(class)))
        }
        _ => false,
    };
    if transient {
        StorageError::Unavailable(error.to_string())
    } else {
        StorageError::Internal(error.to_string())
    }
}

impl Postgres {
    async fn create_now(&self, new: NewRecord, key: Option<IdempotencyKey>) -> Result<CreateOutcome, StorageError> {
        let now = now_ms();
        self.sweep_receipts(now);
        // A concurrent create with the same key loses the race on the receipt's primary key and rolls back
        // everything; its second try finds the winner's receipt and replays it.
        for _ in 0..2 {
            if let Some(outcome) = self.try_create(&new, key.as_ref(), now).await? {
                return Ok(outcome);
            }
        }
        Err(StorageError::Internal("a create receipt kept conflicting".to_owned()))
    }
}

#[async_trait]
impl Storage for Postgres {
    async fn get(&self, resource_type: &str, id: &str) -> Result<Option<Record>, StorageError> {
        let mut c = self.connection().await?;
        let sql = format!("SELECT {RECORD_COLUMNS} FROM resources WHERE resource_type = $1 AND id = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(resource_type)
            .bind(id)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_error)?;
        row.as_ref().map(record_of).transpose()
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<Listed>, StorageError> {
        self.list_page(query).await
    }

    async fn list_at_head(&self, query: ListQuery) -> Result<(Vec<Listed>, u64), StorageError> {
        self.list_page_at_head(query).await
    }

    async fn count(&self, query: ListQuery) -> Result<u64, StorageError> {
        self.count_list(query).await
    }

    /// Each create is its own transaction, on a connection of the pool: it is done here, and returned ready.
    async fn queue_create(&self, new: NewRecord, key: Option<IdempotencyKey>) -> Committing<CreateOutcome> {
        Box::pin(std::future::ready(self.create_now(new, key).await))
    }

    async fn batch(
        &self,
        actor: &str,
        changes: Vec<Change>,
        key: Option<IdempotencyKey>,
    ) -> Result<BatchOutcome, BatchFailure> {
        self.sweep_receipts(now_ms());
        self.apply_batch(actor, changes, key).await
    }

    async fn update(
        &self,
        resource_type: &str,
        id: &str,
        actor: &str,
        check: UpdateCheck,
    ) -> Result<UpdateOutcome, StorageError> {
        let mut tx = self.begin().await?;
        let current = current(&mut tx, resource_type, id).await?;
        let Some(data) = run_check(check, &current)? else {
            return Ok(UpdateOutcome::Unchanged(current));
        };
        let now = now_ms();
        let previous = Previous::of(&current);
        let record = Record { version: current.version + 1, updated_at: now.max(current.updated_at), data, ..current };
        rewrite(&mut tx, &record).await?;
        let event = append(&mut tx, &record, EventKind::Updated, actor, now, Some(previous)).await?;
        self.commit(tx, &event).await?;
        Ok(UpdateOutcome::Changed(record, event))
    }

    async fn delete(
        &self,
        resource_type: &str,
        id: &str,
        actor: &str,
        check: DeleteCheck,
    ) -> Result<EventRecord, StorageError> {
        let mut tx = self.begin().await?;
        let current = current(&mut tx, resource_type, id).await?;
        run_check(check, &current)?;
        remove(&mut tx, resource_type, id).await?;
        let previous = Previous::of(&current);
        let gone = Record { version: current.version + 1, ..current };
        let event = append(&mut tx, &gone, EventKind::Deleted, actor, now_ms(), Some(previous)).await?;
        self.commit(tx, &event).await?;
        Ok(event)
    }

    async fn events_after(
        &self,
        resource_type: &str,
        id: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError> {
        self.read_events(resource_type, id, after, limit).await
    }

    async fn head(&self, resource_type: &str) -> Result<u64, StorageError> {
        self.read_head(resource_type).await
    }

    async fn prune_events(&self, keep: u64, before: u64) -> Result<u64, StorageError> {
        self.prune(keep, before).await
    }

    async fn ensure_indexes(&self, resource_type: &str, paths: &[String]) -> Result<(), StorageError> {
        query::ensure_indexes(self, resource_type, paths).await
    }

    async fn receipt(&self, key: &IdempotencyKey) -> Result<Option<String>, StorageError> {
        // Through the same read as a write's (which also drops a receipt past the window, as a write would).
        let mut tx = self.begin().await?;
        let receipt = self.receipt_in(&mut tx, key, now_ms()).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(receipt)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        let mut c = self.connection().await?;
        sqlx::query("SELECT 1").execute(&mut *c).await.map_err(db_error)?;
        Ok(())
    }
}
