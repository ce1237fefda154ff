//! The event log on PostgreSQL: appending a change's event inside its write, reading pages of it, the heads, and
//! pruning the oldest.

use futures_util::TryStreamExt;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, Row};

use super::{db_error, int, json, object, uint, Postgres, Tx};
use crate::storage::{EventKind, EventRecord, Previous, Record, StorageError, EVENTS_PAGE_BYTES};

const EVENT_COLUMNS: &str =
    "resource_type, seq, id, version, kind, owner_id, actor, data::text, occurred_at, previous::text";

/// Appends the event of a change with the type's next `seq`; the head's row stays locked until the commit.
pub(super) async fn append(
    tx: &mut Tx,
    record: &Record,
    kind: EventKind,
    actor: &str,
    now: u64,
    previous: Option<Previous>,
) -> Result<EventRecord, StorageError> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO topic_heads (resource_type, seq) VALUES ($1, 1)
         ON CONFLICT (resource_type) DO UPDATE SET seq = topic_heads.seq + 1 RETURNING seq",
    )
    .bind(&record.resource_type)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_error)?;
    let event = EventRecord::of(record, kind, actor, uint(seq)?, now, previous);
    let previous = match &event.previous {
        Some(previous) => Some(serde_json::to_string(previous).map_err(|e| StorageError::Internal(e.to_string()))?),
        None => None,
    };
    sqlx::query(
        "INSERT INTO events (resource_type, seq, id, version, kind, owner_id, actor, data, occurred_at, previous)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10::jsonb)",
    )
    .bind(&event.resource_type)
    .bind(seq)
    .bind(&event.id)
    .bind(int(event.version)?)
    .bind(kind.as_str())
    .bind(&event.owner_id)
    .bind(actor)
    .bind(json(&event.data))
    .bind(int(now)?)
    .bind(previous)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(event)
}

fn event_of(row: &PgRow) -> Result<EventRecord, StorageError> {
    let kind: String = row.try_get(4).map_err(db_error)?;
    let previous: Option<String> = row.try_get(9).map_err(db_error)?;
    Ok(EventRecord {
        resource_type: row.try_get(0).map_err(db_error)?,
        seq: uint(row.try_get(1).map_err(db_error)?)?,
        id: row.try_get(2).map_err(db_error)?,
        version: uint(row.try_get(3).map_err(db_error)?)?,
        kind: EventKind::parse(&kind).ok_or_else(|| StorageError::Internal(format!("unknown event kind {kind}")))?,
        owner_id: row.try_get(5).map_err(db_error)?,
        actor: row.try_get(6).map_err(db_error)?,
        data: object(row.try_get(7).map_err(db_error)?)?,
        occurred_at: uint(row.try_get(8).map_err(db_error)?)?,
        previous: match previous {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| StorageError::Internal(e.to_string()))?),
            None => None,
        },
    })
}

impl Postgres {
    /// [`crate::storage::Storage::events_after`].
    pub(super) async fn read_events(
        &self,
        resource_type: &str,
        id: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = match id {
            Some(id) => sqlx::query(AssertSqlSafe(format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 WHERE resource_type = $1 AND id = $2 AND version > $3 ORDER BY version LIMIT $4"
            )))
            .bind(resource_type)
            .bind(id.to_owned()),
            None => sqlx::query(AssertSqlSafe(format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE resource_type = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            )))
            .bind(resource_type),
        };
        let mut c = self.connection().await?;
        let mut rows = statement.bind(after).bind(limit).fetch(&mut *c);
        let (mut events, mut bytes) = (Vec::new(), 0);
        // Read as a stream, so that rows past the bound are never held (sqlx discards the rest of the result).
        while bytes < EVENTS_PAGE_BYTES {
            let Some(row) = rows.try_next().await.map_err(db_error)? else { break };
            let event = event_of(&row)?;
            for column in [7, 9] {
                bytes += row.try_get::<Option<&str>, _>(column).ok().flatten().map_or(0, str::len);
            }
            events.push(event);
        }
        Ok(events)
    }

    /// [`crate::storage::Storage::head`].
    pub(super) async fn read_head(&self, resource_type: &str) -> Result<u64, StorageError> {
        let mut c = self.connection().await?;
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM topic_heads WHERE resource_type = $1")
            .bind(resource_type)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_error)?;
        uint(seq.unwrap_or(0))
    }

    /// [`crate::storage::Storage::prune_events`].
    pub(super) async fn prune(&self, keep: u64, before: u64) -> Result<u64, StorageError> {
        let mut c = self.connection().await?;
        // Each type's log loses a prefix, up to the later of the two cuts (the count kept, the age kept), so the
        // kept range never has a hole, even when nodes' clocks made `occurred_at` go backwards.
        let dropped = sqlx::query(
            "DELETE FROM events e USING topic_heads h
             WHERE e.resource_type = h.resource_type
               AND e.seq <= GREATEST(h.seq - $2, COALESCE((SELECT MAX(x.seq) FROM events x
                   WHERE x.resource_type = h.resource_type AND x.occurred_at < $1), 0))",
        )
        .bind(int(before)?)
        .bind(int(keep)?)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
        Ok(dropped.rows_affected())
    }
}
