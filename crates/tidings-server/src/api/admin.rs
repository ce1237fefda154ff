//! The admin API, for operators with an API key or an admin's token: list the live connections, and disconnect one
//! or all of a user's; list the webhooks, and pause, resume or replay one; show the resource types and the cluster.
//! The admin console (`/admin`, web/admin.js) is a page over these.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tidings_protocol::{ErrorCode, ErrorPayload, FieldError};

use super::notifications::{check_key, API_KEY};
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

/// Lets the request through when it carries one of the server's API keys (`X-Api-Key`), or the token of a user
/// with the admin role (`Authorization: Bearer`, setting `admin_role`), as the console sends.
async fn operator(api: &Api, headers: &HeaderMap) -> Result<(), ApiError> {
    let role = &api.shared.config.admin_role;
    // Without an admin role, tokens are not asked about: the API takes keys only, and answers as that API does.
    if headers.contains_key(API_KEY) || role.is_empty() {
        return check_key(&api.shared.config.api_keys, headers);
    }
    if !headers.contains_key(header::AUTHORIZATION) {
        let message = format!(
            "send the token of a user with the role '{role}' (Authorization: Bearer) or one of the server's API keys \
             (X-Api-Key)"
        );
        let error = ErrorPayload::new(ErrorCode::Unauthorized, message).with_detail("reason", "missing_credentials");
        return Err(ApiError::with_status(StatusCode::UNAUTHORIZED, error));
    }
    let who = api.admit(headers).await?;
    if !who.roles.iter().any(|r| r == role) {
        let message = format!("the admin API is for users with the role '{role}', or an API key (X-Api-Key)");
        let error = ErrorPayload::new(ErrorCode::Forbidden, message).with_detail("reason", "not_admin");
        return Err(ApiError::with_status(StatusCode::FORBIDDEN, error));
    }
    Ok(())
}

/// `GET /api/v1/admin/types`: every resource type with its schema and settings, under the keys of the config file;
/// a before-hook's secret is left out.
pub(super) async fn types(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    operator(&api, &headers).await?;
    let types: Vec<serde_json::Value> = api
        .shared
        .config
        .resource_types
        .iter()
        .map(|ty| {
            let mut value = serde_json::to_value(ty).unwrap_or_default();
            if let Some(secret) = value.pointer_mut("/before/secret") {
                *secret = json!("(set)");
            }
            value
        })
        .collect();
    Ok(output::json(StatusCode::OK, &json!({ "types": types })))
}

/// `GET /api/v1/admin/cluster`: this node, the other nodes it hears (every node beats about once a second), the
/// broker, and this node's counts.
pub(super) async fn cluster(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    operator(&api, &headers).await?;
    let shared = &api.shared;
    let broker = shared.relay.broker();
    let node = shared.directory.node();
    let mut nodes = vec![json!({ "node": node, "self": true, "heardMsAgo": 0 })];
    for (other, heard) in shared.presence.nodes() {
        let heard = u64::try_from(heard.as_millis()).unwrap_or(u64::MAX);
        nodes.push(json!({ "node": other, "self": false, "heardMsAgo": heard }));
    }
    Ok(output::json(
        StatusCode::OK,
        &json!({
            "node": node,
            "broker": { "kind": broker.kind(), "connected": broker.connected() },
            "nodes": nodes,
            "connections": shared.connections.total(),
            "subscriptions": shared.hub.subscriptions(),
            "presenceMembers": shared.presence.len(),
        }),
    ))
}

/// `GET /api/v1/admin/connections`: every live connection, with its user, start, subscriptions and queue depth.
pub(super) async fn connections(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    operator(&api, &headers).await?;
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
    operator(&api, &headers).await?;
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
    operator(&api, &headers).await?;
    let count = api.shared.directory.kick_user(&user_id, reason.get()?);
    Ok(output::json(StatusCode::OK, &json!({ "disconnected": count })))
}

/// `GET /api/v1/admin/webhooks`: every webhook, with its cursor, lag, pause and last error.
pub(super) async fn webhooks(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    operator(&api, &headers).await?;
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
    operator(&api, &headers).await?;
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
