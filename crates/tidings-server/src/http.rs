//! The HTTP side: the WebSocket upgrade at `/ws`, health checks, the dev sign-in of an unconfigured server, and
//! the HTTP API under `/api/v1` (`api/`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tidings_protocol::{encode, CloseCode, Envelope, ServerMessage};
use tracing::{debug, warn};

use crate::connection::{self, Outbound};
use crate::peer::TrustedProxies;
use crate::push::goodbye;
use crate::session::Session;
use crate::shared::Shared;

/// The routes of a Tidings server.
pub fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route(
            "/auth/dev-token",
            get(dev_sign_in_offered).post(dev_token).layer(dev_cors(shared.config.allowed_origins.clone())),
        );
    if shared.config.web_page {
        router = router.merge(crate::web::router());
    }
    let limit = shared.config.limits.hard_message_bytes;
    router
        .with_state(Arc::clone(&shared))
        .merge(crate::api::router(shared))
        .layer(axum::middleware::from_fn(move |request, next| body_within_deadline(request, next, limit)))
}

/// How long a client may take to send a request's body, once its headers are in.
const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// Reads a request's body, at most `limit` bytes, within [`BODY_DEADLINE`], before any handler sees it. A body
/// that trickles or never comes is answered 408 and its connection closed, rather than holding the socket and
/// its memory for as long as the client likes. Requests without a body pass untouched.
async fn body_within_deadline(request: Request, next: axum::middleware::Next, limit: usize) -> Response {
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let chunked = request.headers().contains_key(header::TRANSFER_ENCODING);
    // No body, or one declared too large: the handler answers from the headers alone (the HTTP API with its own
    // PAYLOAD_TOO_LARGE), without reading anything.
    if !chunked && declared.is_none_or(|size| size == 0 || size > limit) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(BODY_DEADLINE, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(_)) => {
            (StatusCode::PAYLOAD_TOO_LARGE, [(header::CONNECTION, "close")], "the body is too large\n").into_response()
        }
        Err(_) => {
            debug!("a request body did not arrive within {} s", BODY_DEADLINE.as_secs());
            (StatusCode::REQUEST_TIMEOUT, [(header::CONNECTION, "close")], "the body did not arrive in time\n")
                .into_response()
        }
    }
}

/// `GET /ws`: checks the Origin and upgrades to a WebSocket that a new session then serves.
async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    if !origin_allowed(&shared.config.allowed_origins, request.headers()) {
        let origin = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or_default();
        if shared.refused_origins.first_time(origin) {
            warn!(
                %origin,
                "refused a WebSocket from a page of this Origin; to allow it, add it to allowed_origins \
                 (TIDINGS_ALLOWED_ORIGINS='[\"{origin}\"]'), or run tidings serve --dev on this machine"
            );
        }
        return (StatusCode::FORBIDDEN, "this Origin may not open a Tidings WebSocket\n").into_response();
    }
    if !fastwebsockets::upgrade::is_upgrade_request(&request) {
        return (StatusCode::BAD_REQUEST, "expected a WebSocket upgrade request\n").into_response();
    }
    let client = shared.proxies.client(peer.ip(), request.headers());
    let max = shared.config.limits.max_unauthenticated_per_address;
    let Some(arrival) = shared.connections.arrive(client, max) else {
        debug!(%client, "upgrade refused: {max} unauthenticated WebSockets from this address already");
        let text = format!("{client} already holds {max} WebSockets that have not authenticated; retry later\n");
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], text).into_response();
    };
    let (response, upgraded) = match fastwebsockets::upgrade::upgrade(&mut request) {
        Ok(pair) => pair,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad WebSocket upgrade: {e}\n")).into_response(),
    };
    let session_shared = Arc::clone(&shared);
    shared.sessions.spawn(async move {
        let ws = match upgraded.await {
            Ok(ws) => ws,
            Err(e) => return debug!("upgrade failed: {e}"),
        };
        let limits = &session_shared.config.limits;
        let (inbound, mut out) = connection::open(ws, limits.hard_message_bytes);
        match session_shared.connections.open(limits.max_connections) {
            Some(permit) => Session::new(Arc::clone(&session_shared), out, permit.arrived(arrival)).run(inbound).await,
            None => {
                warn!("connection refused: the server holds its maximum of {} connections", limits.max_connections);
                let close = CloseCode::ServerBusy;
                let text = encode(&Envelope::now(None, ServerMessage::Disconnect(goodbye(close, None))));
                let _ = out.text(&text).await;
                let _ = out.close(close.code(), close.reason()).await;
            }
        }
    });
    response.map(|_| Body::empty())
}

/// Whether a browser page from this Origin may connect (docs/protocol.md, section 1).
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        // Not a browser: servers and tools send no Origin, and cannot be hijacked cross-site.
        return true;
    };
    if origin_listed(allowed, origin) {
        return true;
    }
    if !allowed.is_empty() {
        return false;
    }
    // With no list, only pages this server serves itself: the Origin's host and port are the Host header.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Whether `origin` is one `allowed_origins` names: itself, through `*`, or through a pattern of any port.
pub(crate) fn origin_listed(allowed: &[String], origin: &str) -> bool {
    allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin) || any_port(a, origin))
}

/// Whether `pattern` ends with `:*` (any port, as `http://localhost:*`) and `origin` is it with a port.
fn any_port(pattern: &str, origin: &str) -> bool {
    let Some(site) = pattern.strip_suffix(":*") else { return false };
    let Some(port) =
        origin.get(..site.len()).filter(|head| head.eq_ignore_ascii_case(site)).map(|_| &origin[site.len()..])
    else {
        return false;
    };
    port.strip_prefix(':').is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// `GET /healthz`: the process is alive.
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    // Queue depths are read when asked for, rather than counted on every push.
    let depths: Vec<usize> = shared.directory.list().iter().map(|c| c.queue_depth).collect();
    ::metrics::gauge!(crate::metrics::QUEUE_DEPTH).set(depths.iter().sum::<usize>() as f64);
    ::metrics::gauge!(crate::metrics::QUEUE_DEPTH_MAX).set(depths.iter().copied().max().unwrap_or(0) as f64);
    ::metrics::gauge!(crate::metrics::SUBSCRIPTIONS).set(shared.hub.subscriptions() as f64);
    ::metrics::gauge!(crate::metrics::PRESENCE_MEMBERS).set(shared.presence.len() as f64);
    ::metrics::gauge!(crate::metrics::BROKER_CONNECTED).set(f64::from(u8::from(shared.relay.broker().connected())));
    let body = crate::metrics::handle().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The reply of `GET /status`: what this node holds, for a load balancer's dashboard or an operator.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    node: String,
    connections: usize,
    subscriptions: usize,
    broker: BrokerStatus,
    webhooks: Vec<WebhookStatus>,
}

/// A webhook as `/status` shows it: whether it is paused and how far behind; the admin API shows the rest.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookStatus {
    name: String,
    paused: bool,
    lag: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BrokerStatus {
    kind: &'static str,
    connected: bool,
}

/// `GET /status`: this node's name, its connection and subscription counts, whether its broker is connected, and
/// each webhook's pause and lag (none when storage does not answer: the status itself must answer).
async fn status(State(shared): State<Arc<Shared>>) -> Json<Status> {
    let broker = shared.relay.broker();
    let hooks = tokio::time::timeout(Duration::from_secs(2), shared.webhooks.statuses(shared.storage.as_ref())).await;
    let webhooks = match hooks {
        Ok(Ok(hooks)) => {
            hooks.into_iter().map(|h| WebhookStatus { name: h.name, paused: h.paused, lag: h.lag }).collect()
        }
        _ => Vec::new(),
    };
    Json(Status {
        webhooks,
        node: shared.directory.node().to_owned(),
        connections: shared.connections.total(),
        subscriptions: shared.hub.subscriptions(),
        broker: BrokerStatus { kind: broker.kind(), connected: broker.connected() },
    })
}

/// `GET /readyz`: the server can serve: not shutting down, and its storage answers.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let ping = tokio::time::timeout(Duration::from_secs(2), shared.storage.ping()).await;
    match ping {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(error)) => (StatusCode::SERVICE_UNAVAILABLE, format!("storage unavailable: {error}\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage does not answer\n").into_response(),
    }
}

/// The body of `POST /auth/dev-token`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DevTokenRequest {
    user_id: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// The reply of `POST /auth/dev-token`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DevToken {
    token: String,
    expires_at: u64,
}

/// How long a dev sign-in token lives.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Whether this server signs anyone in: a loopback listener, and a generated key, or dev mode with a secret.
fn dev_sign_in(shared: &Shared) -> bool {
    let keyed = shared.auth.generated_secret().is_some() || (shared.config.dev && shared.auth.can_mint());
    keyed && shared.config.listen.ip().is_loopback()
}

/// Whether a request comes from this machine and is addressed to it: the client's address is loopback (read
/// through a trusted proxy's headers, so a local proxy does not make every client local), and the `Host` it asked
/// for is a loopback name or address. The second stops a page of another site whose name was rebound to 127.0.0.1
/// (DNS rebinding): its requests carry its own name as `Host`.
fn from_and_to_this_machine(proxies: &TrustedProxies, peer: SocketAddr, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    // Without the port: `name:port`, or `[v6]:port`.
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let loopback_name = name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost");
    let loopback_address = name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    // A request a proxy forwarded is not this machine's, even from a proxy on it that names no client.
    !crate::peer::forwarded(headers)
        && proxies.client(peer.ip(), headers).is_loopback()
        && (loopback_name || loopback_address)
}

/// CORS for the dev sign-in: a page of this machine (`http://localhost`, `http://127.0.0.1`, `http://[::1]`, on any
/// port) that `allowed_origins` names, such as a front end's dev server under `--dev`, may get a dev token. Never
/// through `*`: a server that lets every site's pages connect must not let every site sign its visitor in as anyone.
/// Under `--dev` that is any local page, which may then sign in as anyone: dev mode is for one's own machine.
fn dev_cors(allowed: Vec<String>) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let listed = AllowOrigin::predicate(move |origin, _| {
        let Ok(origin) = origin.to_str() else { return false };
        let port = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        let site = origin.rsplit_once(':').filter(|(_, p)| port(p)).map_or(origin, |(site, _)| site);
        let local =
            site.eq_ignore_ascii_case("http://localhost") || site == "http://127.0.0.1" || site == "http://[::1]";
        let named = allowed.iter().any(|a| a != "*" && (a.eq_ignore_ascii_case(origin) || any_port(a, origin)));
        local && named
    });
    CorsLayer::new()
        .allow_origin(listed)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([header::CONTENT_TYPE])
}

/// `GET /auth/dev-token`: 204 when `POST` would sign in, 404 otherwise, so that the page knows which form to show.
async fn dev_sign_in_offered(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> StatusCode {
    if dev_sign_in(&shared) && from_and_to_this_machine(&shared.proxies, peer, &headers) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// `POST /auth/dev-token`: signs in anyone, only on a server with a generated key listening on loopback.
async fn dev_token(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(request): Json<DevTokenRequest>,
) -> Response {
    if !dev_sign_in(&shared) {
        return (StatusCode::NOT_FOUND, "dev sign-in exists only on an unconfigured server on a loopback address\n")
            .into_response();
    }
    if !from_and_to_this_machine(&shared.proxies, peer, &headers) {
        warn!(%peer, "dev sign-in refused: not from this machine to a loopback host");
        return (StatusCode::FORBIDDEN, "dev sign-in answers only this machine, at localhost or a loopback address\n")
            .into_response();
    }
    let user = request.user_id.trim();
    if user.is_empty() || user.chars().count() > 256 || user.chars().any(char::is_control) {
        return (StatusCode::BAD_REQUEST, "userId must be 1 to 256 characters, none of them a control character\n")
            .into_response();
    }
    match shared.auth.mint(user, &request.roles, DEV_TOKEN_TTL) {
        Ok(token) => {
            let expires_at = tidings_protocol::now_ms() + DEV_TOKEN_TTL.as_millis() as u64;
            Json(DevToken { token, expires_at }).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    #[test]
    fn origins_are_checked_against_the_list_or_the_host() {
        let none: Vec<String> = Vec::new();
        assert!(origin_allowed(&none, &headers(None, "127.0.0.1:8080")));
        assert!(origin_allowed(&none, &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080")));
        assert!(!origin_allowed(&none, &headers(Some("https://evil.example"), "127.0.0.1:8080")));
        let list = vec!["https://app.example.com".to_owned()];
        assert!(origin_allowed(&list, &headers(Some("https://app.example.com"), "api.example.com")));
        assert!(!origin_allowed(&list, &headers(Some("https://api.example.com"), "api.example.com")));
        assert!(origin_allowed(&["*".to_owned()], &headers(Some("https://any.example"), "x")));
        let dev = ["http://localhost:*".to_owned()];
        assert!(origin_allowed(&dev, &headers(Some("http://localhost:5173"), "127.0.0.1:8080")));
        assert!(!origin_allowed(&dev, &headers(Some("http://localhost"), "127.0.0.1:8080")));
        assert!(!origin_allowed(&dev, &headers(Some("http://localhost:5173.evil.example"), "127.0.0.1:8080")));
        assert!(!origin_allowed(&dev, &headers(Some("http://localhost.evil.example:5173"), "127.0.0.1:8080")));
    }

    fn host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, value.parse().expect("a header value"));
        headers
    }

    #[test]
    fn only_this_machine_at_a_loopback_host_is_local() {
        let proxies = TrustedProxies::parse(&["127.0.0.1".to_owned()]).expect("valid");
        let here: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let elsewhere: SocketAddr = "192.0.2.7:5000".parse().expect("addr");
        for ok in ["localhost:8080", "LOCALHOST", "app.localhost:3000", "127.0.0.1:8080", "127.5.5.5", "[::1]:8080"] {
            assert!(from_and_to_this_machine(&proxies, here, &host(ok)), "{ok}");
        }
        for refused in ["evil.example:8080", "localhost.evil.example", "10.0.0.1:8080", "[::2]:80", ""] {
            assert!(!from_and_to_this_machine(&proxies, here, &host(refused)), "{refused}");
        }
        assert!(
            !from_and_to_this_machine(&proxies, elsewhere, &host("localhost:8080")),
            "a client elsewhere, via a proxy"
        );
        assert!(!from_and_to_this_machine(&proxies, here, &HeaderMap::new()), "no Host at all");
        let mut forwarded = host("localhost:8080");
        forwarded.insert("x-forwarded-for", "192.0.2.7".parse().expect("a header value"));
        assert!(!from_and_to_this_machine(&proxies, here, &forwarded), "a client elsewhere, via a local proxy");
    }
}
