//! Notifications on PostgreSQL: each write one transaction; a user's seq from an upsert that locks its head row.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::Row;
use tidings_protocol::now_ms;

use super::{db_error, int, json, object, uint, Postgres};
use crate::storage::notifications::{
    NewNotification, NotificationHead, NotificationRecord, Notifications, Pending, Recipients, LAST_SEEN_STEP_MS,
};
use crate::storage::StorageError;

const COLUMNS: &str = "user_id, seq, id, level, title, body, data::text, created_at";

fn record_of(row: &PgRow) -> Result<NotificationRecord, StorageError> {
    Ok(NotificationRecord {
        user_id: row.try_get(0).map_err(db_error)?,
        seq: uint(row.try_get(1).map_err(db_error)?)?,
        id: row.try_get(2).map_err(db_error)?,
        level: row.try_get(3).map_err(db_error)?,
        title: row.try_get(4).map_err(db_error)?,
        body: row.try_get(5).map_err(db_error)?,
        data: object(row.try_get(6).map_err(db_error)?)?,
        created_at: uint(row.try_get(7).map_err(db_error)?)?,
    })
}

#[async_trait]
impl Notifications for Postgres {
    async fn users_after(&self, after: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        let mut c = self.connection().await?;
        sqlx::query_scalar("SELECT user_id FROM users WHERE user_id > $1 ORDER BY user_id LIMIT $2")
            .bind(after)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *c)
            .await
            .map_err(db_error)
    }

    async fn remember_users(&self, users: &[String]) -> Result<(), StorageError> {
        if users.is_empty() {
            return Ok(());
        }
        let mut c = self.connection().await?;
        // One statement for the batch, its users in one order (so that two nodes' batches cannot deadlock); a
        // known user's row changes only when their last sign-in is a step old.
        sqlx::query(
            "INSERT INTO users (user_id, first_seen, last_seen)
             SELECT DISTINCT u, $2::bigint, $2::bigint FROM UNNEST($1::text[]) AS u ORDER BY u
             ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen
             WHERE users.last_seen + $3 <= excluded.last_seen",
        )
        .bind(users)
        .bind(int(now_ms())?)
        .bind(int(LAST_SEEN_STEP_MS)?)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn forget_users(&self, before: u64) -> Result<u64, StorageError> {
        let mut c = self.connection().await?;
        let mut forgotten = 0;
        // A chunk at a time, by `users_by_last_seen`, so no statement holds many row locks for long.
        loop {
            let chunk = sqlx::query(
                "DELETE FROM users WHERE user_id IN
                 (SELECT user_id FROM users WHERE last_seen < $1 LIMIT 1000 FOR UPDATE SKIP LOCKED)",
            )
            .bind(int(before)?)
            .execute(&mut *c)
            .await
            .map_err(db_error)?
            .rows_affected();
            forgotten += chunk;
            if chunk < 1000 {
                return Ok(forgotten);
            }
        }
    }

    async fn notify(&self, to: Recipients, new: NewNotification) -> Result<Vec<NotificationRecord>, StorageError> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let users: Vec<String> = match to {
            // Each recipient's head row is locked in one order, once: two notifications to the same users in
            // different orders would otherwise lock them crosswise and deadlock.
            Recipients::Users(mut users) => {
                users.sort_unstable();
                users.dedup();
                users
            }
            Recipients::Everyone => sqlx::query_scalar("SELECT user_id FROM users ORDER BY user_id")
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?,
        };
        let data = json(&new.data);
        let mut copies = Vec::with_capacity(users.len());
        for user_id in users {
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO notification_heads (user_id, seq) VALUES ($1, 1)
                 ON CONFLICT (user_id) DO UPDATE SET seq = notification_heads.seq + 1 RETURNING seq",
            )
            .bind(&user_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
            sqlx::query(
                "INSERT INTO notifications (user_id, seq, id, level, title, body, data, created_at, delivered)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, false)",
            )
            .bind(&user_id)
            .bind(seq)
            .bind(&new.id)
            .bind(&new.level)
            .bind(&new.title)
            .bind(&new.body)
            .bind(&data)
            .bind(int(now)?)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            copies.push(new.copy_for(user_id, uint(seq)?, now));
        }
        tx.commit().await.map_err(db_error)?;
        Ok(copies)
    }

    async fn notifications_after(
        &self,
        user_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StorageError> {
        let mut c = self.connection().await?;
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(int(after)?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *c)
            .await
            .map_err(db_error)?;
        rows.iter().map(record_of).collect()
    }

    async fn take_pending(&self, user_id: &str, limit: usize) -> Result<Pending, StorageError> {
        let mut tx = self.begin().await?;
        // The head first: a notification is committed with its head, so every one at or below the head read here
        // is visible to the query after it. Only those are pending; later ones come live.
        let head: Option<i64> = sqlx::query_scalar("SELECT seq FROM notification_heads WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let head = head.map(uint).transpose()?.unwrap_or(0);
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND NOT delivered AND seq <= $3 \
             ORDER BY seq DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(int(head)?)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        let mut newest = rows.iter().map(record_of).collect::<Result<Vec<_>, _>>()?;
        newest.reverse();
        // Only when more than `limit` wait is there anything older to mark: most sign-ins only read.
        if let Some(first) = newest.first().filter(|_| newest.len() == limit) {
            // Older undelivered ones stay readable by `since`, but are no longer pushed at sign-in.
            sqlx::query("UPDATE notifications SET delivered = true WHERE user_id = $1 AND NOT delivered AND seq < $2")
                .bind(user_id)
                .bind(int(first.seq)?)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(Pending { records: newest, head })
    }

    async fn mark_delivered(&self, user_id: &str, seqs: Vec<u64>) -> Result<(), StorageError> {
        let seqs = seqs.into_iter().map(int).collect::<Result<Vec<i64>, _>>()?;
        let mut c = self.connection().await?;
        sqlx::query("UPDATE notifications SET delivered = true WHERE user_id = $1 AND seq = ANY($2)")
            .bind(user_id)
            .bind(seqs)
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn notification_head(&self, user_id: &str) -> Result<NotificationHead, StorageError> {
        let mut c = self.connection().await?;
        let row = sqlx::query("SELECT seq, pruned FROM notification_heads WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(NotificationHead::default()) };
        Ok(NotificationHead {
            seq: uint(row.try_get(0).map_err(db_error)?)?,
            pruned: uint(row.try_get(1).map_err(db_error)?)?,
        })
    }

    async fn prune_notifications(&self, before: u64) -> Result<u64, StorageError> {
        let mut c = self.connection().await?;
        // Per user with a delivered notification old enough: the prefix up to the first that must stay
        // (undelivered, or young), in one statement; the head records how far.
        let dropped = sqlx::query(
            "WITH cuts AS (
                SELECT u.user_id, COALESCE(
                    (SELECT MIN(n.seq) FROM notifications n
                      WHERE n.user_id = u.user_id AND (NOT n.delivered OR n.created_at >= $1)) - 1,
                    (SELECT MAX(n.seq) FROM notifications n WHERE n.user_id = u.user_id)) AS cut
                FROM (SELECT DISTINCT user_id FROM notifications WHERE created_at < $1 AND delivered) u
             ), marked AS (
                UPDATE notification_heads h SET pruned = GREATEST(h.pruned, cuts.cut)
                FROM cuts WHERE h.user_id = cuts.user_id AND cuts.cut > 0
             )
             DELETE FROM notifications n USING cuts WHERE n.user_id = cuts.user_id AND n.seq <= cuts.cut",
        )
        .bind(int(before)?)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
        Ok(dropped.rows_affected())
    }
}
