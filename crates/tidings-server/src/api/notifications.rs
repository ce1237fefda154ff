//! `POST /api/v1/notifications`: the server API that sends notifications, for backends holding an API key.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use tidings_protocol::{ErrorCode, ErrorPayload, FieldError};

use super::input;
use super::output::{self, invalid_params, ApiError};
use super::Api;
use crate::notifications::Draft;
use crate::storage::Recipients;

/// The header that carries the API key.
pub(super) const API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Sends a notification to `to` (user ids, or `"*"` for everyone); 202 with its id and how many got it.
pub(super) async fn notify(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    check_key(&api.shared.config.api_keys, &headers)?;
    let mut errors = Vec::new();
    let Some(body) = input::json_object(&headers, body, api.max_body_bytes(), "", &mut errors).await? else {
        return Err(invalid_params(errors));
    };
    let to = match body.get("to") {
        Some(Value::String(star)) if star == "*" => Some(Recipients::Everyone),
        Some(Value::Array(users)) if users.iter().all(Value::is_string) => {
            Some(Recipients::Users(users.iter().filter_map(|u| u.as_str().map(str::to_owned)).collect()))
        }
        Some(_) => {
            errors.push(FieldError::new("/to", "must be a list of user ids, or \"*\" for everyone"));
            None
        }
        None => {
            errors.push(FieldError::new("/to", "is required"));
            None
        }
    };
    let text = |field: &str, default: Option<&str>, errors: &mut Vec<FieldError>| match body.get(field) {
        Some(Value::String(s)) => s.clone(),
        None if default.is_some() => default.unwrap_or_default().to_owned(),
        None => {
            errors.push(FieldError::new(format!("/{field}"), "is required"));
            String::new()
        }
        Some(_) => {
            errors.push(FieldError::new(format!("/{field}"), "must be a string"));
            String::new()
        }
    };
    let level = text("level", Some("info"), &mut errors);
    let title = text("title", None, &mut errors);
    let message_body = text("body", Some(""), &mut errors);
    let data = match body.get("data") {
        None => Map::new(),
        Some(Value::Object(data)) => data.clone(),
        Some(_) => {
            errors.push(FieldError::new("/data", "must be an object"));
            Map::new()
        }
    };
    let (Some(to), true) = (to, errors.is_empty()) else { return Err(invalid_params(errors)) };
    let draft = Draft { level, title, body: message_body, data };
    let (id, recipients) = api.shared.notifier.send(to, draft).await?;
    Ok(output::json(StatusCode::ACCEPTED, &json!({ "id": id, "recipients": recipients })))
}

/// The request must carry one of the configured keys; a server with none has this API switched off.
pub(super) fn check_key(keys: &[String], headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers.get(API_KEY).and_then(|v| v.to_str().ok());
    let known = given.is_some_and(|given| keys.iter().any(|key| constant_time_eq(key.as_bytes(), given.as_bytes())));
    if known {
        return Ok(());
    }
    let (message, reason) = match (keys.is_empty(), given) {
        (true, _) => ("the server API is off: configure api_keys to use it", "no_api_keys"),
        (false, None) => ("send one of the server's API keys in the X-Api-Key header", "missing_api_key"),
        (false, Some(_)) => ("this API key is not one of the server's", "unknown_api_key"),
    };
    let error = ErrorPayload::new(ErrorCode::Unauthorized, message).with_detail("reason", reason);
    Err(ApiError::with_status(StatusCode::UNAUTHORIZED, error))
}

/// Compares secrets without revealing through timing how much of a guess was right, or how long the key is: the
/// digests of both are compared, always 32 bytes, every byte of them.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter().zip(b.iter()).fold(0_u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
