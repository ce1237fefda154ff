//! The error replies that several rooms of the server build: one builder each, so that a refusal reads the same
//! whether it comes from the WebSocket session, the HTTP API or the notifier.
//!
//! Pointers in `details.errors` are relative to the operation's payload (`/data/quantity`, `/patch/status`); the
//! WebSocket session puts `/payload` in front with [`prefix_pointers`], as the spec's pointers start at the
//! message root.

use serde_json::Value;
use tidings_protocol::{ErrorCode, ErrorPayload, FieldError, Version};
use tracing::error;

use crate::storage::StorageError;

/// NOT_FOUND for a resource that does not exist, or that the user may not know exists.
pub fn not_found(resource_type: &str, id: &str) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::NotFound, format!("there is no {resource_type} '{id}'"))
        .with_detail("resourceType", resource_type)
        .with_detail("id", id)
}

/// FORBIDDEN, saying what the user may not do.
pub fn forbidden(message: String) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::Forbidden, message)
}

/// INVALID_PARAMS listing every bad field; the message names the first, for a reader of logs.
pub fn invalid_params(message: String, errors: Vec<FieldError>) -> ErrorPayload {
    let summary = errors.first().map(|e| format!(": {} {}", e.pointer, e.reason)).unwrap_or_default();
    ErrorPayload::with_field_errors(ErrorCode::InvalidParams, format!("{message}{summary}"), errors)
}

/// INTERNAL: logs `what` under a fresh incident id and tells the client only that id, never the cause.
pub fn internal(what: &str) -> ErrorPayload {
    let incident = format!("{:016x}", rand::random::<u64>());
    error!(incident, "{what}");
    ErrorPayload::new(ErrorCode::Internal, "the server failed; nothing about the request was wrong")
        .with_detail("incidentId", incident)
}

/// UNAVAILABLE with a hint to retry in a second: a dependency failed, the request was fine.
pub fn unavailable(message: &str) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::Unavailable, message).with_detail("retryAfterMs", 1000)
}

/// The reply for a storage failure while working on `resource_type` (and the resource `id`, if one).
pub fn storage_error(error: StorageError, resource_type: &str, id: Option<&str>) -> ErrorPayload {
    match error {
        StorageError::NotFound => not_found(resource_type, id.unwrap_or_default()),
        StorageError::Rejected(payload) => payload,
        StorageError::KeyReused => ErrorPayload::new(ErrorCode::Conflict, "this requestId was already used")
            .with_detail("reason", "request_id_reused"),
        StorageError::Unavailable(why) => {
            tracing::warn!("storage unavailable: {why}");
            unavailable("storage is unavailable; nothing was changed, retry later")
        }
        StorageError::Unknown(why) => {
            tracing::warn!("the outcome of a write is unknown: {why}");
            ErrorPayload::new(
                ErrorCode::Unavailable,
                "storage failed at the commit: the change may have been stored; read it back, or retry a create with \
                 the same requestId, before trying again",
            )
            .with_detail("retryAfterMs", 1000)
            .with_detail("outcome", "unknown")
        }
        StorageError::IdTaken => internal("a create's id was taken, and taken again"),
        StorageError::Internal(why) => internal(&why),
    }
}

/// Puts `prefix` in front of every pointer of an error's `details.errors` (the session adds `/payload`).
pub fn prefix_pointers(mut error: ErrorPayload, prefix: &str) -> ErrorPayload {
    let errors = error.field_errors();
    if errors.is_empty() {
        return error;
    }
    let moved: Vec<FieldError> =
        errors.into_iter().map(|e| FieldError::new(format!("{prefix}{}", e.pointer), e.reason)).collect();
    if let Some(details) = error.details.as_mut() {
        details.insert("errors".to_owned(), serde_json::to_value(moved).unwrap_or(Value::Null));
    }
    error
}

/// CONFLICT when `what` (a resource type, or a presence member) is at version `current` rather than `expected`.
pub fn version_conflict(expected: Option<Version>, what: &str, current: u64) -> Result<(), ErrorPayload> {
    match expected {
        Some(expected) if expected.get() != current => Err(ErrorPayload::new(
            ErrorCode::Conflict,
            format!("the {what} is at version {current}, not {}", expected.get()),
        )
        .with_detail("currentVersion", current)),
        _ => Ok(()),
    }
}

/// LIMIT_EXCEEDED: the advertised `limit`, at `max`, with a sentence for people.
pub fn limit_exceeded(limit: &str, max: impl Into<serde_json::Value>, message: String) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::LimitExceeded, message).with_detail("limit", limit).with_detail("max", max.into())
}
