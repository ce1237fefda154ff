//! The HTTP API: create, read, list, update and delete resources over plain HTTP, and the server API that sends
//! notifications (docs/http-api.md).
//!
//! Each endpoint builds the protocol's request struct (`Create`, `Read`, `Update`, `Delete`) and calls the same
//! [`Resources`](crate::resources::Resources) method as a WebSocket session, so the rules are the same by
//! construction. Errors are the WebSocket `error` payload, with pointers relative to the operation's payload
//! (`/data/quantity`) and an HTTP status chosen by their code; docs/openapi.yaml describes every answer.

mod admin;
mod feed;
mod input;
mod notifications;
mod output;
mod trace_context;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tidings_protocol::{
    decode_client_payload, ClientMessage, Create, Delete, ErrorCode, ErrorPayload, FieldError, MessageType, Read,
    Update,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use self::input::{at, ListParams};
use self::output::{invalid_params, ApiError, RESOURCES};
use crate::auth::Identity;
use crate::shared::Shared;

/// What the handlers share: the server's state, and one rate-limit bucket per user.
struct Api {
    shared: Arc<Shared>,
    rate: DefaultKeyedRateLimiter<String>,
    requests: AtomicU64,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("users_limited", &self.rate.len()).finish_non_exhaustive()
    }
}

/// How many requests pass between two prunings of the rate limiter's idle buckets.
const PRUNE_EVERY: u64 = 1024;

/// The path parameters, kept as text so that the protocol's field types judge them.
type PathParams = Result<Path<Vec<(String, String)>>, PathRejection>;

/// The query parameters, in order, repeated ones included.
type QueryParams = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The routes of the HTTP API, with their own state.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let limits = &shared.config.limits;
    // Each user gets the budget of one WebSocket connection, so HTTP is no way around the rate limit.
    let quota = Quota::per_second(NonZeroU32::new(limits.rate_per_second).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(limits.rate_burst).unwrap_or(NonZeroU32::MIN));
    let allowed_origins = shared.config.allowed_origins.clone();
    let api = Arc::new(Api { shared, rate: RateLimiter::keyed(quota), requests: AtomicU64::new(0) });
    Router::new()
        .route(&format!("{RESOURCES}/{{type}}"), post(create).get(list))
        .route(&format!("{RESOURCES}/{{type}}/{{id}}"), get(read).patch(update).delete(delete))
        .route("/api/v1/batch", post(batch))
        .route("/api/v1/notifications", post(notifications::notify))
        .route("/api/v1/admin/connections", get(admin::connections))
        .route("/api/v1/admin/connections/{session_id}", axum::routing::delete(admin::disconnect))
        .route("/api/v1/admin/users/{user_id}/connections", axum::routing::delete(admin::disconnect_user))
        .route("/api/v1/events", get(feed::feed))
        .route("/api/v1/admin/webhooks", get(admin::webhooks))
        .route("/api/v1/admin/types", get(admin::types))
        .route("/api/v1/admin/cluster", get(admin::cluster))
        .route("/api/v1/admin/webhooks/{name}/{action}", axum::routing::post(admin::control_webhook))
        .route("/api/v1/{*rest}", any(no_such_endpoint))
        .with_state(api)
        .layer(axum::middleware::from_fn(traced))
        .layer(cors(allowed_origins))
}

/// A span around each request of the API, named by its route, for traces (at DEBUG: free unless a collector is
/// configured); a request with a `traceparent` header is a child of its caller's span.
async fn traced(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let route = request.extensions().get::<axum::extract::MatchedPath>().map_or("/api/v1", |path| path.as_str());
    let span = tracing::debug_span!(
        "http.request",
        otel.name = %format_args!("{} {route}", request.method()),
        http.request.method = %request.method(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    trace_context::continue_from(&span, request.headers());
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// CORS for the HTTP API, by `allowed_origins`, as the WebSocket's Origin check: a page of a listed origin may
/// call the API from a browser (its preflight answered, its requests' answers readable); a page of this server
/// needs no CORS. Tokens go in `Authorization`, never in cookies, so no credentials are allowed.
fn cors(allowed: Vec<String>) -> CorsLayer {
    let listed = AllowOrigin::predicate(move |origin, _| {
        origin.to_str().is_ok_and(|origin| crate::http::origin_listed(&allowed, origin))
    });
    CorsLayer::new()
        .allow_origin(listed)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            input::IDEMPOTENCY_KEY,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("x-api-key"),
        ])
        .expose_headers([header::ETAG, header::LOCATION, header::RETRY_AFTER, header::WWW_AUTHENTICATE])
        .max_age(Duration::from_secs(3600))
}

impl Api {
    /// Authenticates the request and takes one token from the user's bucket.
    async fn admit(&self, headers: &HeaderMap) -> Result<Identity, ApiError> {
        let who = input::bearer(&self.shared.auth, headers).await?;
        if self.requests.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            // Buckets that are full again hold no information; dropping them keeps the map to active users.
            self.rate.retain_recent();
        }
        if let Err(not_until) = self.rate.check_key(&who.user_id) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            let error =
                ErrorPayload::new(ErrorCode::RateLimited, format!("too many requests; retry in {retry_after_ms} ms"))
                    .with_detail("retryAfterMs", retry_after_ms);
            return Err(error.into());
        }
        Ok(who)
    }

    fn max_body_bytes(&self) -> usize {
        self.shared.config.limits.max_message_bytes
    }
}

/// `POST /api/v1/resources/{type}`: creates a resource from the body; 201, or 200 for a replay of a create
/// with the same Idempotency-Key.
async fn create(
    State(api): State<Arc<Api>>,
    path: PathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let who = api.admit(&headers).await?;
    let request_id = input::idempotency_key(&headers)?;
    let mut errors = Vec::new();
    let (resource_type, _) = input::path(path, &mut errors);
    let data = input::json_object(&headers, body, api.max_body_bytes(), at::DATA, &mut errors).await?;
    let (Some(resource_type), Some(data), true) = (resource_type, data, errors.is_empty()) else {
        return Err(invalid_params(errors));
    };
    let request_id = request_id.as_ref().map(|id| id.as_str());
    let created = api.shared.resources.create(&who, request_id, Create { resource_type, data }).await?;
    // A retried create answers 200 with the first one's resource; only the request that created it gets 201.
    let status = if created.fresh { StatusCode::CREATED } else { StatusCode::OK };
    Ok(output::resource(status, &created.resource))
}

/// `GET /api/v1/resources/{type}/{id}`: one resource.
async fn read(State(api): State<Arc<Api>>, path: PathParams, headers: HeaderMap) -> Result<Response, ApiError> {
    let who = api.admit(&headers).await?;
    let mut errors = Vec::new();
    let (resource_type, id) = input::path(path, &mut errors);
    let (Some(resource_type), Some(id), true) = (resource_type, id, errors.is_empty()) else {
        return Err(invalid_params(errors));
    };
    let resource = api.shared.resources.read_one(&who, resource_type.as_str(), id.as_str()).await?;
    Ok(output::resource(StatusCode::OK, &resource))
}

/// `GET /api/v1/resources/{type}?filter.FIELD=VALUE&query=JSON&orderBy=...&limit=...&cursor=...`: one page of the
/// list.
async fn list(
    State(api): State<Arc<Api>>,
    path: PathParams,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = api.admit(&headers).await?;
    let mut errors = Vec::new();
    let (resource_type, _) = input::path(path, &mut errors);
    let query = query_params(query, &mut errors);
    let ListParams { filter, query, order_by, limit, cursor, fields, count } = input::list_params(&query, &mut errors);
    let Some(resource_type) = resource_type else { return Err(invalid_params(errors)) };
    let read = Read { resource_type, id: None, filter, query, order_by, limit, cursor, fields, count };
    // The decoder's own rules beyond the field types (at most 16 filters), with its pointers made relative.
    errors.extend(read.check().into_iter().map(relative));
    if !errors.is_empty() {
        return Err(invalid_params(errors));
    }
    let page = api.shared.resources.list(&who, read).await?;
    Ok(output::json(StatusCode::OK, &page))
}

/// `PATCH /api/v1/resources/{type}/{id}`: applies the body as a JSON merge patch, optionally at a version.
async fn update(
    State(api): State<Arc<Api>>,
    path: PathParams,
    query: QueryParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let who = api.admit(&headers).await?;
    let mut errors = Vec::new();
    let (resource_type, id) = input::path(path, &mut errors);
    let query = query_params(query, &mut errors);
    let expected_version = input::expected_version(&headers, &query, &mut errors);
    let patch = input::json_object(&headers, body, api.max_body_bytes(), at::PATCH, &mut errors).await?;
    let (Some(resource_type), Some(id), Some(patch), true) = (resource_type, id, patch, errors.is_empty()) else {
        return Err(invalid_params(errors));
    };
    let updated = api.shared.resources.update(&who, Update { resource_type, id, patch, expected_version }).await?;
    Ok(output::resource(StatusCode::OK, &updated))
}

/// `DELETE /api/v1/resources/{type}/{id}`: removes a resource, optionally at a version.
async fn delete(
    State(api): State<Arc<Api>>,
    path: PathParams,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = api.admit(&headers).await?;
    let mut errors = Vec::new();
    let (resource_type, id) = input::path(path, &mut errors);
    let query = query_params(query, &mut errors);
    let expected_version = input::expected_version(&headers, &query, &mut errors);
    let (Some(resource_type), Some(id), true) = (resource_type, id, errors.is_empty()) else {
        return Err(invalid_params(errors));
    };
    let deleted = api.shared.resources.delete(&who, Delete { resource_type, id, expected_version }).await?;
    Ok(output::json(StatusCode::OK, &deleted))
}

/// `POST /api/v1/batch`: applies the body's operations together, or none of them (docs/protocol.md, 7.8); 200
/// with every operation's result, also for a replay of a batch with the same Idempotency-Key. A failure is the
/// first failing operation's error, with its `index` in `details` and its pointers under `/operations/{index}`.
async fn batch(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let who = api.admit(&headers).await?;
    let request_id = input::idempotency_key(&headers)?;
    let mut errors = Vec::new();
    let body = input::json_object(&headers, body, api.max_body_bytes(), "", &mut errors).await?;
    let Some(body) = body else { return Err(invalid_params(errors)) };
    // The body is the payload of a WebSocket `batch`, judged by the same decoder.
    let batch = match decode_client_payload(MessageType::Batch, &serde_json::Value::Object(body).to_string()) {
        Ok(ClientMessage::Batch(batch)) => batch,
        Ok(_) => return Err(crate::errors::internal("a batch decoded as another message").into()),
        Err(error) => return Err(invalid_params(error.field_errors().into_iter().map(relative).collect())),
    };
    let request_id = request_id.as_ref().map(|id| id.as_str());
    let result = api.shared.resources.batch(&who, request_id, batch).await?;
    Ok(output::json(StatusCode::OK, &result))
}

/// Any other path under `/api/v1/`: NOT_FOUND in the API's error format, rather than an empty 404.
async fn no_such_endpoint(method: Method, uri: Uri) -> ApiError {
    let path: String = uri.path().chars().take(200).collect();
    ErrorPayload::new(ErrorCode::NotFound, format!("there is no endpoint {method} {path}")).into()
}

/// The decoded query parameters; a query string that cannot be decoded is a fault of the whole query.
fn query_params(query: QueryParams, errors: &mut Vec<FieldError>) -> input::Query {
    match query {
        Ok(Query(pairs)) => input::Query(pairs),
        Err(rejection) => {
            errors.push(FieldError::new("", rejection.body_text()));
            input::Query::default()
        }
    }
}

/// A pointer of the decoder's, from the message root, made relative to the payload as the HTTP API's are.
fn relative(error: FieldError) -> FieldError {
    let pointer = error.pointer.strip_prefix("/payload").unwrap_or(&error.pointer).to_owned();
    FieldError::new(pointer, error.reason)
}
