//! Webhooks: each configured hook delivers the events of one resource type to an HTTP endpoint, in `seq` order,
//! at least once, signed the Standard Webhooks way, from a cursor kept in storage (docs/webhooks.md).
//!
//! The event log is the source: a hook reads it after its cursor, never the hub, so a hook survives restarts,
//! catches up after an outage of its endpoint, and can be replayed from any `seq` the log still holds. In a
//! cluster every node runs every hook's deliverer, but only the node holding the hook's lease in the shared
//! database delivers; when that node dies, its lease expires and another takes over from the stored cursor.
//! Delivery is on no client's path: it reads the log and writes its cursor in tasks of its own.

mod deliver;
mod sign;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::WebhookConfig;
use crate::query::Condition;
use crate::resources::ResourceTypes;
use crate::storage::{EventKind, EventRecord, HookControl, Storage, StorageError};

pub use sign::{key_of, signature};

/// A hook ready to run: its settings, its filter compiled, its signing key.
#[derive(Debug)]
pub struct Hook {
    /// What the config says.
    pub config: WebhookConfig,
    /// Only these kinds; empty: all.
    kinds: Vec<EventKind>,
    /// Only the changes of what this matches, before or after.
    condition: Option<Condition>,
    /// The HMAC key.
    key: Vec<u8>,
    /// Whether its type's update events carry the data before the change.
    pub previous_data: bool,
    /// Woken when an operator pauses, resumes or replays it, so the deliverer looks at once.
    wake: Notify,
}

impl Hook {
    /// Whether the hook delivers `event`.
    fn wants(&self, event: &EventRecord) -> bool {
        let kind_ok = self.kinds.is_empty() || self.kinds.contains(&event.kind);
        kind_ok && self.condition.as_ref().is_none_or(|condition| condition.change(event).is_some())
    }
}

/// A hook as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookStatus {
    /// Its name.
    pub name: String,
    /// The type whose events it delivers.
    pub resource_type: String,
    /// Where it posts.
    pub url: String,
    /// The `seq` of the last event it is done with.
    pub cursor: u64,
    /// Events of its type after the cursor.
    pub lag: u64,
    /// Whether it is paused.
    pub paused: bool,
    /// Failed attempts in a row.
    pub failures: u32,
    /// What the last failure said.
    pub last_error: Option<String>,
}

/// Every hook of a server.
#[derive(Debug, Default)]
pub struct Webhooks {
    hooks: HashMap<String, Arc<Hook>>,
}

impl Webhooks {
    /// Compiles the configured hooks against the resource types: each names a type, and its query is checked
    /// against that type's schema.
    pub fn compile(configs: &[WebhookConfig], types: &ResourceTypes) -> anyhow::Result<Webhooks> {
        let mut hooks = HashMap::new();
        for config in configs {
            let name = &config.name;
            let def = types.get(&config.resource_type).ok_or_else(|| {
                anyhow::anyhow!("webhook '{name}': there is no resource type '{}'", config.resource_type)
            })?;
            anyhow::ensure!(
                !def.config.ephemeral,
                "webhook '{name}': {} is ephemeral: its messages are never stored, so no hook can follow them",
                config.resource_type
            );
            let condition = match &config.query {
                None => None,
                Some(query) => {
                    let query = serde_json::from_value(query.clone())
                        .map_err(|e| anyhow::anyhow!("webhook '{name}': query: {e}"))?;
                    let condition = crate::query::check(&query, &def.config.schema, "query").map_err(|errors| {
                        let reasons: Vec<String> =
                            errors.iter().map(|e| format!("{} {}", e.pointer, e.reason)).collect();
                        anyhow::anyhow!("webhook '{name}': {}", reasons.join("; "))
                    })?;
                    Some(condition)
                }
            };
            let kinds = config.events.iter().filter_map(|kind| EventKind::parse(kind)).collect();
            let key = key_of(config.secret.as_deref().unwrap_or_default());
            let previous_data = def.config.previous_data;
            let hook = Hook { config: config.clone(), kinds, condition, key, previous_data, wake: Notify::new() };
            hooks.insert(name.clone(), Arc::new(hook));
        }
        Ok(Webhooks { hooks })
    }

    /// Starts a deliverer per hook on this node; they stop when `stop` is cancelled, giving up their leases, and
    /// the handles tell when they have.
    pub fn start(&self, storage: &Arc<dyn Storage>, node: &str, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        let start = |hook: &Arc<Hook>| {
            let deliverer = deliver::Deliverer::new(Arc::clone(hook), Arc::clone(storage), node.to_owned());
            tokio::spawn(deliverer.run(stop.clone()))
        };
        self.hooks.values().map(start).collect()
    }

    /// Every hook's state, by name.
    pub async fn statuses(&self, storage: &dyn Storage) -> Result<Vec<HookStatus>, StorageError> {
        let mut statuses = Vec::with_capacity(self.hooks.len());
        for hook in self.hooks.values() {
            let state = storage.hook_state(&hook.config.name).await?.unwrap_or_default();
            let head = storage.head(&hook.config.resource_type).await?;
            statuses.push(HookStatus {
                name: hook.config.name.clone(),
                resource_type: hook.config.resource_type.clone(),
                url: hook.config.url.clone(),
                cursor: state.cursor,
                lag: head.saturating_sub(state.cursor),
                paused: state.paused,
                failures: state.failures,
                last_error: state.last_error,
            });
        }
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(statuses)
    }

    /// Pauses, resumes or replays hook `name`; `false` when there is no such hook.
    pub async fn control(&self, storage: &dyn Storage, name: &str, control: HookControl) -> Result<bool, StorageError> {
        let Some(hook) = self.hooks.get(name) else { return Ok(false) };
        storage.control_hook(name, control).await?;
        // The deliverer of this node looks again now; on another node, within its poll.
        hook.wake.notify_one();
        Ok(true)
    }
}
