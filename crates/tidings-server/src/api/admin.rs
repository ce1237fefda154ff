//! The admin API, for operators with an API key: list the live connections, and disconnect one or all of a user's.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tidings_protocol::{ErrorCode, ErrorPayload};

use super::notifications::check_key;
use super::output::{self, ApiError};
use super::Api;

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
