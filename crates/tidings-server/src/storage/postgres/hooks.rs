//! Webhook state on PostgreSQL: one row per hook, each change one statement (or two, creating the row first).

use async_trait::async_trait;
use sqlx::Row;
use tidings_protocol::now_ms;

use super::{db_error, int, uint, Postgres};
use crate::storage::hooks::{HookControl, HookState, Hooks};
use crate::storage::StorageError;

const CREATE: &str = "INSERT INTO hooks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING";

#[async_trait]
impl Hooks for Postgres {
    async fn hook_state(&self, name: &str) -> Result<Option<HookState>, StorageError> {
        let mut c = self.connection().await?;
        let row = sqlx::query("SELECT cursor, paused, failures, last_error FROM hooks WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(HookState {
            cursor: uint(row.try_get(0).map_err(db_error)?)?,
            paused: row.try_get(1).map_err(db_error)?,
            failures: u32::try_from(row.try_get::<i32, _>(2).map_err(db_error)?).unwrap_or(0),
            last_error: row.try_get(3).map_err(db_error)?,
        }))
    }

    async fn advance_hook(
        &self,
        name: &str,
        from: u64,
        to: u64,
        failures: u32,
        last_error: Option<&str>,
    ) -> Result<bool, StorageError> {
        let mut c = self.connection().await?;
        sqlx::query(CREATE).bind(name).execute(&mut *c).await.map_err(db_error)?;
        let done =
            sqlx::query("UPDATE hooks SET cursor = $3, failures = $4, last_error = $5 WHERE name = $1 AND cursor = $2")
                .bind(name)
                .bind(int(from)?)
                .bind(int(to)?)
                .bind(i32::try_from(failures).unwrap_or(i32::MAX))
                .bind(last_error)
                .execute(&mut *c)
                .await
                .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn control_hook(&self, name: &str, control: HookControl) -> Result<(), StorageError> {
        let mut c = self.connection().await?;
        sqlx::query(CREATE).bind(name).execute(&mut *c).await.map_err(db_error)?;
        let query = match control {
            HookControl::Pause(reason) => {
                sqlx::query("UPDATE hooks SET paused = TRUE, last_error = $2 WHERE name = $1").bind(name).bind(reason)
            }
            HookControl::Resume => {
                sqlx::query("UPDATE hooks SET paused = FALSE, failures = 0 WHERE name = $1").bind(name)
            }
            HookControl::ReplayFrom(seq) => {
                sqlx::query("UPDATE hooks SET cursor = $2, paused = FALSE, failures = 0 WHERE name = $1")
                    .bind(name)
                    .bind(int(seq.saturating_sub(1))?)
            }
        };
        query.execute(&mut *c).await.map_err(db_error)?;
        Ok(())
    }

    async fn lease_hook(&self, name: &str, node: &str, until_ms: u64) -> Result<bool, StorageError> {
        let mut c = self.connection().await?;
        sqlx::query(CREATE).bind(name).execute(&mut *c).await.map_err(db_error)?;
        let taken = sqlx::query(
            "UPDATE hooks SET lease_node = $2, lease_until = $3
             WHERE name = $1 AND (lease_node IS NULL OR lease_node = $2 OR lease_until < $4)",
        )
        .bind(name)
        .bind(node)
        .bind(int(until_ms)?)
        .bind(int(now_ms())?)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
        Ok(taken.rows_affected() == 1)
    }
}
