//! Webhook delivery state in storage: where each hook stands in its type's event log, whether it is paused and
//! why, and which node delivers it.
//!
//! The contract every backend keeps (tests/storage/ runs it against each):
//! - A hook that never ran has no state; `advance_hook` and `control_hook` create it.
//! - `advance_hook` moves a hook's cursor only from the cursor its caller read: a replay or a reset ordered in the
//!   meantime (through `control_hook`) wins, and the deliverer, told so by `false`, reads the state again.
//!   It never changes `paused`, so an operator's pause is never undone by a delivery that was under way.
//! - `lease_hook` gives a hook to one node at a time: the node that holds an unexpired lease renews it, another
//!   takes it only once it has expired. Every change is durable before the call returns.

use async_trait::async_trait;

use super::StorageError;

/// Where a hook stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookState {
    /// The `seq` of the last event of its type it is done with (delivered, or passed over by its filter).
    pub cursor: u64,
    /// Whether it is paused: by an operator, or after a run of failures.
    pub paused: bool,
    /// Failed attempts in a row.
    pub failures: u32,
    /// What the last failed attempt said.
    pub last_error: Option<String>,
}

/// What an operator, or the deliverer itself, does to a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookControl {
    /// Stop delivering, keeping the cursor; with the reason.
    Pause(String),
    /// Deliver again from the cursor, the failures forgotten.
    Resume,
    /// Deliver again from this `seq` on (the cursor goes to the one before), the failures forgotten, unpaused.
    ReplayFrom(u64),
}

/// Webhook state storage.
#[async_trait]
pub trait Hooks {
    /// The state of hook `name`; `None` before anything was stored for it.
    async fn hook_state(&self, name: &str) -> Result<Option<HookState>, StorageError>;

    /// Moves the cursor of `name` from `from` to `to` and records the failures and the last error; `false`
    /// (and nothing written) when the stored cursor is not `from`.
    async fn advance_hook(
        &self,
        name: &str,
        from: u64,
        to: u64,
        failures: u32,
        last_error: Option<&str>,
    ) -> Result<bool, StorageError>;

    /// Pauses, resumes or rewinds `name`.
    async fn control_hook(&self, name: &str, control: HookControl) -> Result<(), StorageError>;

    /// Takes or renews the lease of `name` for `node` until `until_ms` (Unix ms), when it is free, expired or
    /// already `node`'s; whether `node` holds it now.
    async fn lease_hook(&self, name: &str, node: &str, until_ms: u64) -> Result<bool, StorageError>;
}
