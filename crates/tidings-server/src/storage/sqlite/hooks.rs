//! Webhook state on SQLite: one row per hook, written through the writer thread like every other write.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::{sql_error, Sqlite};
use crate::storage::hooks::{HookControl, HookState, Hooks};
use crate::storage::StorageError;

#[async_trait]
impl Hooks for Sqlite {
    async fn hook_state(&self, name: &str) -> Result<Option<HookState>, StorageError> {
        let name = name.to_owned();
        self.read(move |c| {
            c.query_row("SELECT cursor, paused, failures, last_error FROM hooks WHERE name = ?", [name], |row| {
                Ok(HookState {
                    cursor: row.get(0)?,
                    paused: row.get(1)?,
                    failures: row.get(2)?,
                    last_error: row.get(3)?,
                })
            })
            .optional()
            .map_err(|e| sql_error(&e))
        })
        .await
    }

    async fn advance_hook(
        &self,
        name: &str,
        from: u64,
        to: u64,
        failures: u32,
        last_error: Option<&str>,
    ) -> Result<bool, StorageError> {
        let (name, last_error) = (name.to_owned(), last_error.map(str::to_owned));
        self.write(move |c, _| {
            // A hook without a row stands at 0: the first advance creates it.
            super::execute(c, "INSERT OR IGNORE INTO hooks (name) VALUES (?)", [&name]).map_err(|e| sql_error(&e))?;
            let changed = super::execute(
                c,
                "UPDATE hooks SET cursor = ?3, failures = ?4, last_error = ?5 WHERE name = ?1 AND cursor = ?2",
                params![name, from, to, failures, last_error],
            )
            .map_err(|e| sql_error(&e))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn control_hook(&self, name: &str, control: HookControl) -> Result<(), StorageError> {
        let name = name.to_owned();
        self.write(move |c, _| {
            super::execute(c, "INSERT OR IGNORE INTO hooks (name) VALUES (?)", [&name]).map_err(|e| sql_error(&e))?;
            let done = match control {
                HookControl::Pause(reason) => super::execute(
                    c,
                    "UPDATE hooks SET paused = 1, last_error = ?2 WHERE name = ?1",
                    params![name, reason],
                ),
                HookControl::Resume => {
                    super::execute(c, "UPDATE hooks SET paused = 0, failures = 0 WHERE name = ?1", params![name])
                }
                HookControl::ReplayFrom(seq) => super::execute(
                    c,
                    "UPDATE hooks SET cursor = ?2, paused = 0, failures = 0 WHERE name = ?1",
                    params![name, seq.saturating_sub(1)],
                ),
            };
            done.map(|_| ()).map_err(|e| sql_error(&e))
        })
        .await
    }

    async fn lease_hook(&self, name: &str, node: &str, until_ms: u64) -> Result<bool, StorageError> {
        let (name, node) = (name.to_owned(), node.to_owned());
        self.write(move |c, now| {
            super::execute(c, "INSERT OR IGNORE INTO hooks (name) VALUES (?)", [&name]).map_err(|e| sql_error(&e))?;
            let taken = super::execute(
                c,
                "UPDATE hooks SET lease_node = ?2, lease_until = ?3
                 WHERE name = ?1 AND (lease_node IS NULL OR lease_node = ?2 OR lease_until < ?4)",
                params![name, node, until_ms, now],
            )
            .map_err(|e| sql_error(&e))?;
            Ok(taken == 1)
        })
        .await
    }
}
