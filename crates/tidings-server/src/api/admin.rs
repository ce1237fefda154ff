//! The admin API, for operators with an API key: list the live connections, and disconnect one or all of a user's;
//! list the webhooks, and pause, resume or replay one.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tidings_protocol::{ErrorCode, ErrorPayload, FieldError};

use super::notifications::check_key;
use super::output::{self, ApiError};
use super::Api;
use crate::storage::HookControl;

/// `?reason=...`: what the disconnected clients are told (at most 123 bytes, the room in a close frame).
#[derive(Debug, Deserialize)]
pub(super) struct Reason {
    reason: Option<String>,
}

impl Reason {
    fn get(&self) -> Result<Option<&str>, ApiError> {
        match self.reason.as_deref() {
            Some(reason) if reason.len() > 123 => {
                let error = ErrorPayload::new(ErrorCode::InvalidParams, "reason must be at most 123 bytes");
                Err(ApiError::with_status(StatusCode::BAD_REQUEST, error))
            }
            reason => Ok(reason),
        }
    }
}

/// `GET /api/v1/admin/connections`: every live connection, with its user, start, subscriptions and queue depth.
pub(super) async fn connections(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    check_key(&api.shared.config.api_keys, &headers)?;
    let listed = api.shared.directory.list();
    Ok(output::json(StatusCode::OK, &json!({ "total": listed.len(), "connections": listed })))
}

/// `DELETE /api/v1/admin/connections/{sessionId}`: disconnects one connection with 4502.
pub(super) async fn disconnect(
    State(api): State<Arc<Api>>,
    Path(session_id): Path<String>,
    Query(reason): Query<Reason>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_key(&api.shared.config.api_keys, &headers)?;
    if !api.shared.directory.kick(&session_id, reason.get()?) {
        let error = ErrorPayload::new(ErrorCode::NotFound, format!("there is no connection '{session_id}'"))
            .with_detail("sessionId", session_id.as_str());
        return Err(ApiError::with_status(StatusCode::NOT_FOUND, error));
    }
    Ok(output::json(StatusCode::OK, &json!({ "disconnected": 1 })))
}

/// `DELETE /api/v1/admin/users/{userId}/connections`: disconnects every connection of a user with 4502.
pub(super) async fn disconnect_user(
    State(api): State<Arc<Api>>,
    Path(user_id): Path<String>,
    Query(reason): Query<Reason>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_key(&api.shared.config.api_keys, &headers)?;
    let count = api.shared.directory.kick_user(&user_id, reason.get()?);
    Ok(output::json(StatusCode::OK, &json!({ "disconnected": count })))
}

/// `GET /api/v1/admin/webhooks`: every webhook, with its cursor, lag, pause and last error.
pub(super) async fn webhooks(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    check_key(&api.shared.config.api_keys, &headers)?;
    let shared = &api.shared;
    let statuses = shared.webhooks.statuses(shared.storage.as_ref()).await.map_err(unavailable)?;
    Ok(output::json(StatusCode::OK, &json!({ "webhooks": statuses })))
}

/// `POST /api/v1/admin/webhooks/{name}/pause`, `.../resume`, `.../replay?from=SEQ`.
pub(super) async fn control_webhook(
    State(api): State<Arc<Api>>,
    Path((name, action)): Path<(String, String)>,
    query: super::QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_key(&api.shared.config.api_keys, &headers)?;
    let mut errors = Vec::new();
    let query = super::query_params(query, &mut errors);
    let from = query.single("from", "/from", &mut errors).map(|text| text.parse::<u64>().ok().filter(|seq| *seq >= 1));
    let control = match (action.as_str(), from) {
        ("pause", _) => HookControl::Pause("paused by an operator".to_owned()),
        ("resume", _) => HookControl::Resume,
        ("replay", Some(Some(seq))) if errors.is_empty() => HookControl::ReplayFrom(seq),
        ("replay", _) => {
            errors.push(FieldError::new("/from", "replay needs ?from=SEQ, a seq of 1 or more"));
            return Err(super::output::invalid_params(errors));
        }
        _ => {
            let error =
                ErrorPayload::new(ErrorCode::NotFound, format!("a webhook can pause, resume or replay, not {action}"));
            return Err(ApiError::with_status(StatusCode::NOT_FOUND, error));
        }
    };
    let shared = &api.shared;
    if !shared.webhooks.control(shared.storage.as_ref(), &name, control).await.map_err(unavailable)? {
        let error = ErrorPayload::new(ErrorCode::NotFound, format!("there is no webhook '{name}'"))
            .with_detail("name", name.as_str());
        return Err(ApiError::with_status(StatusCode::NOT_FOUND, error));
    }
    let statuses = shared.webhooks.statuses(shared.storage.as_ref()).await.map_err(unavailable)?;
    let status = statuses.into_iter().find(|status| status.name == name);
    Ok(output::json(StatusCode::OK, &json!({ "webhook": status })))
}

fn unavailable(error: crate::storage::StorageError) -> ApiError {
    let error = ErrorPayload::new(ErrorCode::Unavailable, format!("storage: {error}"));
    ApiError::with_status(StatusCode::SERVICE_UNAVAILABLE, error)
}
