//! Notifications on SQLite: writes on the writer thread like every other write, reads on the read connections.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{sql_error, Sqlite};
use crate::storage::notifications::{
    NewNotification, NotificationHead, NotificationRecord, Notifications, Pending, Recipients, LAST_SEEN_STEP_MS,
};
use crate::storage::StorageError;

const COLUMNS: &str = "user_id, seq, id, level, title, body, data, created_at";

/// A chunk of the users last seen before a time, by `users_by_last_seen`.
pub(super) const FORGET_USERS: &str =
    "DELETE FROM users WHERE rowid IN (SELECT rowid FROM users WHERE last_seen < ?1 LIMIT ?2)";

fn record_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<NotificationRecord> {
    let data: String = row.get(6)?;
    Ok(NotificationRecord {
        user_id: row.get(0)?,
        seq: row.get(1)?,
        id: row.get(2)?,
        level: row.get(3)?,
        title: row.get(4)?,
        body: row.get(5)?,
        data: serde_json::from_str(&data)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e)))?,
        created_at: row.get(7)?,
    })
}

fn query(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<NotificationRecord>, StorageError> {
    let mut statement = c.prepare_cached(sql).map_err(|e| sql_error(&e))?;
    let rows = statement.query_map(params, record_of).map_err(|e| sql_error(&e))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(|e| sql_error(&e))
}

fn notify(
    c: &Connection,
    to: Recipients,
    new: NewNotification,
    now: u64,
) -> Result<Vec<NotificationRecord>, StorageError> {
    let users = match to {
        Recipients::Users(mut users) => {
            // Once each, as on PostgreSQL: a user named twice gets one copy.
            users.sort_unstable();
            users.dedup();
            users
        }
        Recipients::Everyone => {
            let mut statement =
                c.prepare_cached("SELECT user_id FROM users ORDER BY user_id").map_err(|e| sql_error(&e))?;
            let rows = statement.query_map([], |row| row.get(0)).map_err(|e| sql_error(&e))?;
            rows.collect::<Result<Vec<String>, _>>().map_err(|e| sql_error(&e))?
        }
    };
    let data = serde_json::Value::Object(new.data.clone()).to_string();
    let mut copies = Vec::with_capacity(users.len());
    for user_id in users {
        let seq: u64 = super::query_row(
            c,
            "INSERT INTO notification_heads (user_id, seq) VALUES (?, 1)
             ON CONFLICT (user_id) DO UPDATE SET seq = seq + 1 RETURNING seq",
            [&user_id],
            |row| row.get(0),
        )
        .map_err(|e| sql_error(&e))?;
        super::execute(
            c,
            "INSERT INTO notifications (user_id, seq, id, level, title, body, data, created_at, delivered)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            params![user_id, seq, new.id, new.level, new.title, new.body, data, now],
        )
        .map_err(|e| sql_error(&e))?;
        copies.push(new.copy_for(user_id, seq, now));
    }
    Ok(copies)
}

#[async_trait]
impl Notifications for Sqlite {
    async fn users_after(&self, after: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        let (after, limit) = (after.to_owned(), i64::try_from(limit).unwrap_or(i64::MAX));
        self.read(move |c| {
            let mut statement = c
                .prepare_cached("SELECT user_id FROM users WHERE user_id > ? ORDER BY user_id LIMIT ?")
                .map_err(|e| sql_error(&e))?;
            let rows = statement.query_map(params![after, limit], |row| row.get(0)).map_err(|e| sql_error(&e))?;
            rows.collect::<Result<Vec<String>, _>>().map_err(|e| sql_error(&e))
        })
        .await
    }

    async fn remember_users(&self, users: &[String]) -> Result<(), StorageError> {
        if users.is_empty() {
            return Ok(());
        }
        let users = users.to_vec();
        let step = i64::try_from(LAST_SEEN_STEP_MS).unwrap_or(i64::MAX);
        self.write(move |c, now| {
            // A known user's row changes only when their last sign-in is a step old: most of a batch writes nothing.
            let mut statement = c
                .prepare_cached(
                    "INSERT INTO users (user_id, first_seen, last_seen) VALUES (?1, ?2, ?2)
                     ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen
                     WHERE users.last_seen + ?3 <= excluded.last_seen",
                )
                .map_err(|e| sql_error(&e))?;
            for user_id in &users {
                statement.execute(params![user_id, now, step]).map_err(|e| sql_error(&e))?;
            }
            Ok(())
        })
        .await
    }

    async fn forget_users(&self, before: u64) -> Result<u64, StorageError> {
        let mut forgotten = 0;
        // A chunk at a time, found by `users_by_last_seen`, each a short write of its own.
        loop {
            let chunk = self
                .write(move |c, _| {
                    super::execute(c, FORGET_USERS, params![before, super::maintenance::MAINTENANCE_CHUNK])
                        .map_err(|e| sql_error(&e))
                })
                .await? as u64;
            forgotten += chunk;
            if chunk < super::maintenance::MAINTENANCE_CHUNK {
                return Ok(forgotten);
            }
        }
    }

    async fn notify(&self, to: Recipients, new: NewNotification) -> Result<Vec<NotificationRecord>, StorageError> {
        self.write(move |c, now| notify(c, to, new, now)).await
    }

    async fn notifications_after(
        &self,
        user_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StorageError> {
        let user_id = user_id.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE user_id = ? AND seq > ? ORDER BY seq LIMIT ?");
        self.read(move |c| query(c, &sql, params![user_id, after, limit])).await
    }

    async fn take_pending(&self, user_id: &str, limit: usize) -> Result<Pending, StorageError> {
        // A sign-in reads, on this task when a reader is free (an indexed read of microseconds); it writes only when
        // more than `limit` wait, which is rare, so that signing in costs no commit.
        let on_task = self.free_reader().map(|connection| newest_pending(&connection, user_id, limit));
        let pending = match on_task {
            Some(pending) => pending?,
            None => {
                let user_id = user_id.to_owned();
                self.read(move |c| newest_pending(c, &user_id, limit)).await?
            }
        };
        if pending.records.len() == limit {
            if let Some(first) = pending.records.first().map(|record| record.seq) {
                // Older undelivered ones stay readable by `since`, but are no longer pushed at sign-in.
                let user_id = user_id.to_owned();
                self.write(move |c, _| {
                    super::execute(
                        c,
                        "UPDATE notifications SET delivered = 1 WHERE user_id = ? AND delivered = 0 AND seq < ?",
                        params![user_id, first],
                    )
                    .map_err(|e| sql_error(&e))
                })
                .await?;
            }
        }
        Ok(pending)
    }

    async fn mark_delivered(&self, user_id: &str, seqs: Vec<u64>) -> Result<(), StorageError> {
        let user_id = user_id.to_owned();
        self.write(move |c, _| {
            let mut statement = c
                .prepare_cached("UPDATE notifications SET delivered = 1 WHERE user_id = ? AND seq = ?")
                .map_err(|e| sql_error(&e))?;
            for seq in seqs {
                statement.execute(params![user_id, seq]).map_err(|e| sql_error(&e))?;
            }
            Ok(())
        })
        .await
    }

    async fn notification_head(&self, user_id: &str) -> Result<NotificationHead, StorageError> {
        let user_id = user_id.to_owned();
        self.read(move |c| {
            super::query_row(c, "SELECT seq, pruned FROM notification_heads WHERE user_id = ?", [user_id], |row| {
                Ok(NotificationHead { seq: row.get(0)?, pruned: row.get(1)? })
            })
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| sql_error(&e))
        })
        .await
    }

    async fn prune_notifications(&self, before: u64) -> Result<u64, StorageError> {
        // The users with a delivered notification old enough, by `notifications_by_age`; then each one's prefix,
        // as a short write of its own.
        let users: Vec<String> = self
            .read(move |c| {
                let mut statement = c
                    .prepare_cached(
                        "SELECT DISTINCT user_id FROM notifications WHERE created_at < ? AND delivered = 1 LIMIT 10000",
                    )
                    .map_err(|e| sql_error(&e))?;
                let rows = statement.query_map([before], |row| row.get(0)).map_err(|e| sql_error(&e))?;
                rows.collect::<Result<_, _>>().map_err(|e| sql_error(&e))
            })
            .await?;
        let mut dropped = 0;
        for user_id in users {
            dropped += self
                .write(move |c, _| {
                    // The first one that must stay (undelivered, or young) bounds the prefix.
                    let cut: Option<u64> = c
                        .query_row(
                            "SELECT COALESCE(
                                (SELECT MIN(seq) FROM notifications WHERE user_id = ?1 AND (delivered = 0 OR created_at >= ?2)) - 1,
                                (SELECT MAX(seq) FROM notifications WHERE user_id = ?1))",
                            params![user_id, before],
                            |row| row.get(0),
                        )
                        .map_err(|e| sql_error(&e))?;
                    let Some(cut) = cut.filter(|cut| *cut > 0) else { return Ok(0) };
                    let n = super::execute(c, "DELETE FROM notifications WHERE user_id = ? AND seq <= ?", params![user_id, cut])
                        .map_err(|e| sql_error(&e))?;
                    super::execute(
                        c,
                        "UPDATE notification_heads SET pruned = MAX(pruned, ?) WHERE user_id = ?",
                        params![cut, user_id],
                    )
                    .map_err(|e| sql_error(&e))?;
                    Ok(n as u64)
                })
                .await?;
        }
        Ok(dropped)
    }
}

/// A user's head and their newest `limit` undelivered notifications at or below it, oldest first, read in one
/// snapshot: a notification is committed with its head, so every one at or below the head read here is seen.
fn newest_pending(c: &Connection, user_id: &str, limit: usize) -> Result<Pending, StorageError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Cached statements throughout, the transaction's too: this runs at every sign-in, and parsing SQL was a
    // visible share of one.
    let run =
        |sql: &str| c.prepare_cached(sql).and_then(|mut statement| statement.execute([])).map_err(|e| sql_error(&e));
    run("BEGIN")?;
    let read = || {
        let head: u64 = c
            .prepare_cached("SELECT seq FROM notification_heads WHERE user_id = ?")
            .and_then(|mut statement| statement.query_row([user_id], |row| row.get(0)).optional())
            .map_err(|e| sql_error(&e))?
            .unwrap_or(0);
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = ? AND delivered = 0 AND seq <= ? ORDER BY seq DESC LIMIT ?"
        );
        let mut newest = query(c, &sql, params![user_id, head, limit])?;
        newest.reverse();
        Ok(Pending { records: newest, head })
    };
    let pending = read();
    // A read-only transaction: ending it cannot fail in a way that changes what was read.
    run("COMMIT")?;
    pending
}
