//! Upkeep of the SQLite log: pruning events past their retention and sweeping expired create receipts, each a
//! chunk at a time and found by index, so that maintenance never holds the writer (and every write behind it)
//! for long. `tests::maintenance_finds_its_rows_by_index_and_never_scans_a_table` holds the indexes to that.

use rusqlite::params;

use super::{execute, sql_error, Sqlite};
use crate::storage::StorageError;

/// Rows one maintenance statement deletes at most: each chunk is a short write of its own (or a bounded part of
/// a batch), so maintenance never holds the writer, and every client's write behind it, for long.
pub(super) const MAINTENANCE_CHUNK: u64 = 1000;

/// The expired create receipts, a chunk at a time, by `idempotency_by_age`.
pub(super) const SWEEP_RECEIPTS: &str = "DELETE FROM idempotency WHERE rowid IN \
    (SELECT rowid FROM idempotency WHERE created_at < ?1 LIMIT ?2)";
/// The types and their heads, which pruning walks.
const PRUNE_HEADS: &str = "SELECT resource_type, seq FROM topic_heads";
/// The last `seq` of a type that occurred before a time, by `events_by_type_time`.
const PRUNE_LAST_BEFORE: &str = "SELECT MAX(seq) FROM events WHERE resource_type = ?1 AND occurred_at < ?2";
/// A chunk of a type's events up to a `seq`, oldest first, by the primary key.
const PRUNE_CHUNK: &str = "DELETE FROM events WHERE rowid IN \
    (SELECT rowid FROM events WHERE resource_type = ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3)";

/// SQLite storage.
impl Sqlite {
    /// Drops the events beyond the newest `keep` of each type and those that occurred before `before`.
    pub(super) async fn prune(&self, keep: u64, before: u64) -> Result<u64, StorageError> {
        // Each type's log loses a prefix: everything up to the later of the two cuts (the count kept, the age
        // kept), so the kept range never has a hole, even when clocks made `occurred_at` go backwards.
        let heads: Vec<(String, u64)> = self
            .read(|c| {
                let mut statement = c.prepare_cached(PRUNE_HEADS).map_err(|e| sql_error(&e))?;
                let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(|e| sql_error(&e))?;
                rows.collect::<Result<_, _>>().map_err(|e| sql_error(&e))
            })
            .await?;
        let mut dropped = 0;
        for (resource_type, head) in heads {
            let by_age: Option<u64> = {
                let resource_type = resource_type.clone();
                self.read(move |c| {
                    c.query_row(PRUNE_LAST_BEFORE, params![resource_type, before], |row| row.get(0))
                        .map_err(|e| sql_error(&e))
                })
                .await?
            };
            let cut = head.saturating_sub(keep).max(by_age.unwrap_or(0));
            loop {
                let resource_type = resource_type.clone();
                let chunk = self
                    .write(move |c, _| {
                        execute(c, PRUNE_CHUNK, params![resource_type, cut, MAINTENANCE_CHUNK])
                            .map_err(|e| sql_error(&e))
                    })
                    .await? as u64;
                dropped += chunk;
                if chunk < MAINTENANCE_CHUNK {
                    break;
                }
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::Connection;
    use serde_json::Map;

    use super::*;
    use crate::storage::{NewRecord, Storage};

    /// What SQLite plans for `sql`: one line per step, such as `SEARCH events USING INDEX ...`.
    fn plan(c: &Connection, sql: &str) -> Vec<String> {
        let mut statement = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
        // The plan does not depend on the values: NULL stands in for each parameter.
        let nulls = vec![rusqlite::types::Value::Null; statement.parameter_count()];
        let rows = statement.query_map(rusqlite::params_from_iter(nulls), |row| row.get::<_, String>(3)).expect("plan");
        rows.collect::<Result<_, _>>().expect("plan rows")
    }

    #[test]
    fn maintenance_finds_its_rows_by_index_and_never_scans_a_table() {
        let dir = tempfile::tempdir().expect("dir");
        let _db = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(60)).expect("open");
        let c = Connection::open(dir.path().join("t.db")).expect("connection");
        for sql in [SWEEP_RECEIPTS, PRUNE_LAST_BEFORE, PRUNE_CHUNK, super::super::notifications::FORGET_USERS] {
            let steps = plan(&c, sql);
            let scans: Vec<&String> = steps.iter().filter(|step| step.starts_with("SCAN")).collect();
            assert!(scans.is_empty(), "{sql}\nscans: {scans:?}\nplan: {steps:?}");
            assert!(steps.iter().any(|step| step.starts_with("SEARCH")), "{sql}: {steps:?}");
        }
    }

    #[tokio::test]
    async fn pruning_keeps_the_newest_events() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(60)).expect("open");
        for n in 0..10 {
            let new = NewRecord {
                resource_type: "order".into(),
                id: format!("O-{n}"),
                owner_id: "a".into(),
                data: Map::new(),
            };
            db.create(new, None).await.expect("create");
        }
        assert_eq!(db.prune_events(3, 0).await.expect("prune"), 7);
        let kept = db.events_after("order", None, 0, 100).await.expect("events");
        assert_eq!(kept.first().map(|e| e.seq), Some(8));
    }
}
