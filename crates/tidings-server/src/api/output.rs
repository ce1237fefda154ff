//! What the HTTP API answers: protocol values as JSON bodies, and errors with the HTTP status of their code.

use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tidings_protocol::{ErrorCode, ErrorPayload, FieldError, Resource};

/// Where the resources of the HTTP API live; `Location` headers are built on it.
pub(super) const RESOURCES: &str = "/api/v1/resources";

/// An error answer: the WebSocket `error` payload as the body, with the status its code maps to.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    payload: ErrorPayload,
}

impl ApiError {
    /// An error with a status other than its code's: 415 for a body that is not JSON.
    pub(super) fn with_status(status: StatusCode, payload: ErrorPayload) -> Self {
        ApiError { status, payload }
    }
}

impl From<ErrorPayload> for ApiError {
    fn from(payload: ErrorPayload) -> Self {
        ApiError { status: status_of(payload.code), payload }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.payload.details.as_ref().and_then(|d| d.get("retryAfterMs")).and_then(|v| v.as_u64());
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, Json(self.payload)).into_response();
        let headers = response.headers_mut();
        if unauthorized {
            // RFC 6750: a 401 names the scheme the client must use.
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tidings\""));
        }
        if let Some(ms) = retry_after {
            // Retry-After counts whole seconds, so the wait is rounded up: retrying early would be refused again.
            let seconds = ms.div_ceil(1000).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The HTTP status of an error code (docs/http-api.md, "Statuses").
pub(super) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidMessage | ErrorCode::InvalidParams => StatusCode::BAD_REQUEST,
        // The HTTP API has no message types, states or versions to negotiate; should one of these codes ever
        // reach it, the request was at fault.
        ErrorCode::UnsupportedType | ErrorCode::InvalidState | ErrorCode::UnsupportedVersion => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized | ErrorCode::TokenExpired => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        // A stale If-Match is CONFLICT as over WebSocket, not 412, so that the status and the code agree.
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited | ErrorCode::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// INVALID_PARAMS listing every bad part of a request, with the first one in the message, as the decoder does.
pub(super) fn invalid_params(errors: Vec<FieldError>) -> ApiError {
    let mut message = match errors.first() {
        Some(first) => format!("invalid request: {} {}", first.pointer, first.reason),
        None => "invalid request".to_owned(),
    };
    if errors.len() > 1 {
        message.push_str(&format!(" (and {} more)", errors.len() - 1));
    }
    ErrorPayload::with_field_errors(ErrorCode::InvalidParams, message, errors).into()
}

/// A resource, with its version as the entity tag, so that a client can send it back in If-Match.
pub(super) fn resource(status: StatusCode, resource: &Resource) -> Response {
    let mut response = json(status, resource);
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", resource.version.get())) {
        headers.insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED {
        // Types and ids match patterns of URL-safe characters, so the path needs no escaping.
        let location = format!("{RESOURCES}/{}/{}", resource.resource_type, resource.id);
        if let Ok(location) = HeaderValue::from_str(&location) {
            headers.insert(header::LOCATION, location);
        }
    }
    response
}

/// Any protocol value as a JSON body.
pub(super) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_auth_errors_name_the_scheme() {
        assert_eq!(status_of(ErrorCode::Conflict), StatusCode::CONFLICT);
        assert_eq!(status_of(ErrorCode::TokenExpired), StatusCode::UNAUTHORIZED);
        for code in ErrorCode::ALL {
            assert!(status_of(code).is_client_error() || status_of(code).is_server_error(), "{code}");
        }
        let response = ApiError::from(ErrorPayload::new(ErrorCode::Unauthorized, "no")).into_response();
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        let limited = ErrorPayload::new(ErrorCode::RateLimited, "slow").with_detail("retryAfterMs", 1001);
        let response = ApiError::from(limited).into_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"2"[..]));
    }
}
