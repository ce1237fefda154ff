//! A type's before-commit hook: the change is posted to the team's own endpoint before it is committed, and the
//! answer accepts it, rejects it with the endpoint's code, message and field errors, or rewrites its data
//! (docs/webhooks.md, "Before-commit hooks").
//!
//! The call is made outside any transaction: for an update or a delete, the resource is read first and the
//! change is then committed only if it is still at the version the hook saw (else CONFLICT), so a slow hook never
//! holds a lock or the SQLite writer.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tidings_protocol::{now_ms, ErrorCode, ErrorPayload, FieldError};

use crate::auth::Identity;
use crate::config::BeforeHookConfig;
use crate::storage::Record;
use crate::webhooks::{key_of, signature};

/// A type's before-commit hook, ready to ask: its settings and one HTTP agent, whose connections are kept and
/// reused from change to change rather than opened for each.
#[derive(Debug)]
pub struct BeforeHook {
    /// What the config says.
    pub config: BeforeHookConfig,
    agent: ureq::Agent,
}

impl BeforeHook {
    /// The hook of `config`, its agent made once, at start.
    pub fn new(config: BeforeHookConfig) -> BeforeHook {
        let timeout = Duration::from_millis(config.timeout_ms);
        let agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        BeforeHook { config, agent }
    }

    /// Whether it sees `operation`.
    pub fn sees(&self, operation: &str) -> bool {
        self.config.sees(operation)
    }
}

/// What the hook decided.
#[derive(Debug)]
pub enum Verdict {
    /// Go ahead; with new data when the hook rewrote it.
    Proceed(Option<Map<String, Value>>),
    /// Stop, with this error for the client.
    Refuse(ErrorPayload),
}

/// A change as the hook sees it.
pub struct Change<'a> {
    /// `create`, `update` or `delete`.
    pub operation: &'a str,
    /// The type.
    pub resource_type: &'a str,
    /// Who makes it.
    pub who: &'a Identity,
    /// The data to be written (for a create, after defaults; for an update, after the patch).
    pub data: Option<&'a Map<String, Value>>,
    /// The patch of an update.
    pub patch: Option<&'a Map<String, Value>>,
    /// The stored resource of an update or delete.
    pub resource: Option<&'a Record>,
}

/// The answer a hook gives: nothing (accept), `data` (accept, rewritten), or `allow: false` with the error.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    allow: Option<bool>,
    data: Option<Map<String, Value>>,
    code: Option<String>,
    message: Option<String>,
    #[serde(default)]
    errors: Vec<AnswerError>,
}

#[derive(Debug, Deserialize)]
struct AnswerError {
    pointer: String,
    reason: String,
}

/// Asks the hook about `change`.
pub async fn ask(hook: &BeforeHook, change: Change<'_>) -> Verdict {
    let body = json!({
        "operation": change.operation,
        "resourceType": change.resource_type,
        "user": { "id": change.who.user_id, "roles": change.who.roles },
        "data": change.data,
        "patch": change.patch,
        "resource": change.resource,
    })
    .to_string();
    let id = format!("before_{}_{}", change.resource_type, rand::random::<u64>());
    match call(hook, &id, body).await {
        Ok(answer) => verdict(answer),
        Err(_) if hook.config.fail_open => Verdict::Proceed(None),
        Err(error) => Verdict::Refuse(
            ErrorPayload::new(
                ErrorCode::Unavailable,
                format!("the {} before-commit hook did not answer: {error}", change.resource_type),
            )
            .with_detail("reason", "before_hook_unavailable"),
        ),
    }
}

fn verdict(answer: Answer) -> Verdict {
    if answer.allow != Some(false) {
        return Verdict::Proceed(answer.data);
    }
    // The hook speaks the spec's codes; those a rejection can mean are kept, anything else is FORBIDDEN.
    let code = match answer.code.as_deref() {
        Some("INVALID_PARAMS") => ErrorCode::InvalidParams,
        Some("CONFLICT") => ErrorCode::Conflict,
        _ => ErrorCode::Forbidden,
    };
    let message = answer.message.unwrap_or_else(|| "refused by the before-commit hook".to_owned());
    let errors: Vec<FieldError> = answer.errors.into_iter().map(|e| FieldError::new(e.pointer, e.reason)).collect();
    let refusal = if errors.is_empty() {
        ErrorPayload::new(code, message)
    } else {
        ErrorPayload::with_field_errors(code, message, errors)
    };
    Verdict::Refuse(refusal.with_detail("reason", "before_hook"))
}

/// Posts the change, signed when the hook has a secret; the answer of a 2xx reply (empty is an acceptance).
async fn call(hook: &BeforeHook, id: &str, body: String) -> Result<Answer, String> {
    let mut request = hook.agent.post(&hook.config.url).header("content-type", "application/json");
    if let Some(secret) = &hook.config.secret {
        let timestamp = now_ms() / 1000;
        request = request
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature(&key_of(secret), id, timestamp, &body));
    }
    let answered = tokio::task::spawn_blocking(move || {
        let mut response = request.send(body.as_bytes()).map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
        Ok::<_, String>((status, text))
    })
    .await
    .map_err(|e| format!("the request task failed: {e}"))??;
    let (status, text) = answered;
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    if text.trim().is_empty() {
        return Ok(Answer::default());
    }
    serde_json::from_str(&text).map_err(|e| format!("an answer that is not the hook's JSON: {e}"))
}
