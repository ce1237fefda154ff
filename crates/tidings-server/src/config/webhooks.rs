//! The `[[webhooks]]` settings: where each hook posts which events of its resource type, how it signs them, and
//! how it retries; and a type's before-commit hook (`[resource_types.before]`). Checked here for what needs no other module; the type and the query are checked against the
//! resource types when the server starts (`webhooks/mod.rs`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One `[[webhooks]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Its name: 1 to 64 lower-case letters, digits, `-` and `_`; its state in storage is kept under it, so a
    /// renamed hook starts anew.
    pub name: String,
    /// Where events are posted: an `http://` or `https://` URL.
    pub url: String,
    /// The resource type whose events it delivers, in `seq` order.
    pub resource_type: String,
    /// Only these kinds of event (`created`, `updated`, `deleted`); empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Only the changes of resources this query (docs/protocol.md, 7.7) matches before or after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Value>,
    /// The signing secret: `whsec_` and base64 (the Standard Webhooks form), or any other text, used as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A file holding the secret, relative to the config file (container secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// How long one request may take, in milliseconds.
    #[serde(deserialize_with = "super::duration::millis", default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Failed attempts in a row after which the hook pauses (until resumed through the admin API).
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// The first wait after a failure, in milliseconds; each next one doubles, up to `retry_max_ms`, with jitter.
    #[serde(deserialize_with = "super::duration::millis", default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// The longest wait between attempts, in milliseconds.
    #[serde(deserialize_with = "super::duration::millis", default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// How long a node's hold on the hook lasts without renewal, in milliseconds: when the delivering node dies,
    /// another takes over at most this long after.
    #[serde(deserialize_with = "super::duration::millis", default = "default_lease_ms")]
    pub lease_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_max_failures() -> u32 {
    10
}

fn default_retry_base_ms() -> u64 {
    1_000
}

fn default_retry_max_ms() -> u64 {
    300_000
}

fn default_lease_ms() -> u64 {
    15_000
}

impl WebhookConfig {
    /// Reads `secret_file` (relative to `base`, the config file's folder) into `secret`.
    pub(super) fn read_secret_file(&mut self, base: &Path) -> anyhow::Result<()> {
        if let Some(file) = &self.secret_file {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("webhook '{}': cannot read {}: {e}", self.name, path.display()))?;
            self.secret = Some(text.trim().to_owned());
        }
        Ok(())
    }

    /// Refuses what cannot work, naming the hook and the key.
    pub(super) fn check(&self) -> anyhow::Result<()> {
        let name = &self.name;
        let valid_name = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        anyhow::ensure!(valid_name, "webhook '{name}': name must be 1 to 64 lower-case letters, digits, - and _");
        anyhow::ensure!(
            self.url.starts_with("http://") || self.url.starts_with("https://"),
            "webhook '{name}': url must start with http:// or https://"
        );
        for kind in &self.events {
            anyhow::ensure!(
                ["created", "updated", "deleted"].contains(&kind.as_str()),
                "webhook '{name}': events may be created, updated and deleted, not '{kind}'"
            );
        }
        anyhow::ensure!(
            self.secret.as_deref().is_some_and(|secret| secret.len() >= 16),
            "webhook '{name}': needs a secret (or secret_file) of at least 16 characters to sign its requests"
        );
        anyhow::ensure!(
            self.timeout_ms > 0 && self.max_failures > 0,
            "webhook '{name}': timeout_ms and max_failures must be positive"
        );
        anyhow::ensure!(self.lease_ms >= 300, "webhook '{name}': lease_ms must be at least 300");
        anyhow::ensure!(
            self.retry_base_ms > 0 && self.retry_max_ms >= self.retry_base_ms,
            "webhook '{name}': retry_base_ms must be positive and at most retry_max_ms"
        );
        Ok(())
    }
}

/// A resource type's before-commit hook: called with each change of the listed operations before it is
/// committed; it accepts, rejects or rewrites the change (docs/webhooks.md, "Before-commit hooks").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeforeHookConfig {
    /// Where changes are posted: an `http://` or `https://` URL.
    pub url: String,
    /// The operations it sees: `create`, `update`, `delete`; all three when left out.
    #[serde(default = "all_operations")]
    pub operations: Vec<String>,
    /// How long the hook may take, in milliseconds, before the change fails (or goes ahead, with `fail_open`).
    #[serde(deserialize_with = "super::duration::millis", default = "default_before_timeout_ms")]
    pub timeout_ms: u64,
    /// Whether a hook that does not answer lets the change go ahead; by default it fails it (UNAVAILABLE).
    #[serde(default)]
    pub fail_open: bool,
    /// A secret to sign the requests with, as webhooks are signed; unsigned without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn all_operations() -> Vec<String> {
    ["create", "update", "delete"].map(str::to_owned).to_vec()
}

fn default_before_timeout_ms() -> u64 {
    2_000
}

impl BeforeHookConfig {
    /// Refuses what cannot work, naming the type.
    pub fn check(&self, resource_type: &str) -> anyhow::Result<()> {
        let at = format!("resource type '{resource_type}': before");
        anyhow::ensure!(
            self.url.starts_with("http://") || self.url.starts_with("https://"),
            "{at}.url must start with http:// or https://"
        );
        for operation in &self.operations {
            anyhow::ensure!(
                ["create", "update", "delete"].contains(&operation.as_str()),
                "{at}.operations may be create, update and delete, not '{operation}'"
            );
        }
        anyhow::ensure!(self.timeout_ms > 0, "{at}.timeout_ms must be positive");
        Ok(())
    }

    /// Whether the hook sees `operation`.
    pub fn sees(&self, operation: &str) -> bool {
        self.operations.iter().any(|seen| seen == operation)
    }
}
