//! Webhooks against a real HTTP endpoint on loopback: events arrive in `seq` order, signed the Standard Webhooks
//! way, at least once; a failing or slow endpoint is retried, then the hook pauses and says why, and resumes where
//! it stopped; a replay delivers again; a restart goes on from the stored cursor. Each on SQLite and PostgreSQL.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::receiver::{Received, Receiver};
use common::{call, rest, TestServer};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tidings_client::Client;
use tidings_server::config::WebhookConfig;
use tidings_server::Config;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const API_KEY: &str = "webhook-test-api-key-0123456789";

/// A hook on orders to `url`, quick to retry and to give up, and an API key for the admin API.
fn hooked(url: &str, adjust: impl FnOnce(&mut WebhookConfig)) -> impl FnOnce(&mut Config) {
    let mut hook = WebhookConfig {
        name: "orders-out".to_owned(),
        url: url.to_owned(),
        resource_type: "order".to_owned(),
        events: Vec::new(),
        query: None,
        secret: Some(SECRET.to_owned()),
        secret_file: None,
        timeout_ms: 400,
        max_failures: 3,
        retry_base_ms: 20,
        retry_max_ms: 100,
        lease_ms: 15_000,
    };
    adjust(&mut hook);
    move |config: &mut Config| {
        config.webhooks = vec![hook];
        config.api_keys = vec![API_KEY.to_owned()];
    }
}

async fn start(postgres: Option<&str>, config: impl FnOnce(&mut Config)) -> Option<TestServer> {
    match postgres {
        None => Some(TestServer::start_with(config).await),
        Some(test) => TestServer::start_on_postgres_with(test, config).await,
    }
}

/// Runs a scenario on SQLite, then on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(None).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::$name(Some(stringify!($name))).await;
            }
        }
    )+};
}

on_both_backends!(
    events_arrive_in_order_signed_and_at_least_once,
    a_failing_endpoint_is_retried_then_pauses_the_hook_which_resumes_where_it_stopped,
    a_replay_delivers_again_and_a_restart_goes_on_from_the_stored_cursor,
);

async fn order(client: &Client, product: &str) -> String {
    let data = json!({ "productId": product, "quantity": 1, "totalAmount": 5 });
    let created =
        call(client, "create", &format!("c-{product}"), json!({ "resourceType": "order", "data": data })).await;
    created["id"].as_str().expect("an id").to_owned()
}

/// Verifies a request's signature as an endpoint would, with the secret alone.
fn verify(request: &Received) -> bool {
    let key = STANDARD.decode(SECRET.trim_start_matches("whsec_")).expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("a key");
    mac.update(format!("{}.{}.{}", request.id, request.timestamp, request.body).as_bytes());
    request.signature == format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The admin API's view of the hook.
async fn status(server: &TestServer) -> Value {
    let reply = rest::send(server.addr, "GET", "/api/v1/admin/webhooks", &[("X-Api-Key", API_KEY)], b"").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["webhooks"][0].clone()
}

/// Asks the admin API until `check` holds for the hook's state (the deliverer writes it after the endpoint
/// answered, so it can lag the endpoint's view by a moment); within `PATIENCE`.
async fn until_status(server: &TestServer, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        let state = status(server).await;
        if check(&state) {
            return state;
        }
        assert!(std::time::Instant::now() < deadline, "waited in vain for {what}: {state}");
        tokio::task::yield_now().await;
    }
}

async fn control(server: &TestServer, action: &str) -> Value {
    let path = format!("/api/v1/admin/webhooks/orders-out/{action}");
    let reply = rest::send(server.addr, "POST", &path, &[("X-Api-Key", API_KEY)], b"").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["webhook"].clone()
}

/// The seqs of the accepted requests, in the order they came.
fn seqs(received: &[Received]) -> Vec<u64> {
    received.iter().filter(|r| r.accepted).map(Received::seq).collect()
}

async fn events_arrive_in_order_signed_and_at_least_once(postgres: Option<&str>) {
    let endpoint = Receiver::start().await;
    let Some(server) = start(postgres, hooked(&endpoint.url, |_| {})).await else { return };
    let (alice, _pushes) = server.signed_in("alice").await;
    let (admin, _admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    let first = order(&alice, "P1").await;
    order(&alice, "P2").await;
    call(&admin, "update", "u", json!({ "resourceType": "order", "id": first, "patch": { "status": "paid" } })).await;
    call(&alice, "delete", "d", json!({ "resourceType": "order", "id": first })).await;

    endpoint.until(2, "four events", |r| seqs(r).len() >= 4).await;
    let received = endpoint.accepted();
    assert_eq!(seqs(&received), [1, 2, 3, 4], "in seq order, each once while nothing failed");
    let kinds: Vec<Value> = received.iter().map(|r| r.json()["payload"]["eventType"].clone()).collect();
    assert_eq!(kinds, [json!("order_created"), json!("order_created"), json!("order_updated"), json!("order_deleted")]);
    for request in &received {
        assert!(verify(request), "a signature an endpoint accepts: {request:?}");
        assert_eq!(request.json()["type"], "event", "the event as on the wire");
        assert_eq!(request.id, format!("orders-out_order_{}", request.seq()));
        let age = tidings_protocol::now_ms() / 1000 - request.timestamp.parse::<u64>().expect("seconds");
        assert!(age < 60, "a fresh timestamp");
    }
    let state = until_status(&server, "the cursor at 4", |s| s["cursor"] == 4).await;
    assert_eq!((state["lag"].as_u64(), state["paused"].as_bool()), (Some(0), Some(false)), "{state}");
}

async fn a_failing_endpoint_is_retried_then_pauses_the_hook_which_resumes_where_it_stopped(postgres: Option<&str>) {
    let endpoint = Receiver::start().await;
    let Some(server) = start(postgres, hooked(&endpoint.url, |_| {})).await else { return };
    let (alice, _pushes) = server.signed_in("alice").await;

    // A failure, then a success: the same event again, with the same id.
    endpoint.fail(1);
    order(&alice, "P1").await;
    endpoint.until(2, "the first event, after a failure", |r| seqs(r) == [1]).await;
    let attempts: Vec<(u64, bool)> = endpoint.received().iter().map(|r| (r.seq(), r.accepted)).collect();
    assert_eq!(attempts, [(1, false), (1, true)]);
    // An endpoint slower than the hook's timeout (400 ms): the request counts as failed and is sent again.
    endpoint.delay(1, std::time::Duration::from_millis(1500));
    order(&alice, "P2").await;
    let second = |r: &[Received]| r.iter().filter(|request| request.seq() == 2).count();
    endpoint.until(2, "the second event, after a timeout", |r| seqs(r) == [1, 2] && second(r) == 2).await;
    assert!(endpoint.received().iter().all(|r| r.id == format!("orders-out_order_{}", r.seq())), "one id per event");

    // Now the endpoint fails until told otherwise: after three failures in a row the hook pauses, and says so.
    endpoint.fail(usize::MAX);
    order(&alice, "P3").await;
    order(&alice, "P4").await;
    let third = |r: &[Received]| r.iter().filter(|request| request.seq() == 3).count();
    endpoint.until(2, "three attempts of the third event", |r| third(r) >= 3).await;
    let paused = until_status(&server, "the hook paused", |s| s["paused"] == true).await;
    assert_eq!((paused["cursor"].as_u64(), paused["lag"].as_u64()), (Some(2), Some(2)), "{paused}");
    assert!(paused["lastError"].as_str().is_some_and(|e| e.contains("HTTP 500")), "{paused}");
    let (_, node) = common::http(&server, "GET", "/status", None).await;
    let node: Value = serde_json::from_str(&node).expect("the status");
    assert_eq!(node["webhooks"], json!([{ "name": "orders-out", "paused": true, "lag": 2 }]), "/status says so too");
    assert_eq!(paused["failures"], 3, "{paused}");
    assert_eq!(third(&endpoint.received()), 3, "no attempt after the pause");
    let attempts_when_paused = endpoint.received().len();

    // The endpoint recovers; the hook stays paused until resumed, then goes on from where it stopped.
    endpoint.recover();
    order(&alice, "P5").await;
    assert_eq!(status(&server).await["paused"], true);
    assert_eq!(endpoint.received().len(), attempts_when_paused, "a paused hook posts nothing");
    let resumed = control(&server, "resume").await;
    assert_eq!(resumed["paused"], false, "{resumed}");
    endpoint.until(2, "the rest", |r| seqs(r).len() >= 5).await;
    assert_eq!(seqs(&endpoint.received()), [1, 2, 3, 4, 5], "in order, none lost");
}

async fn a_replay_delivers_again_and_a_restart_goes_on_from_the_stored_cursor(postgres: Option<&str>) {
    let endpoint = Receiver::start().await;
    let config = hooked(&endpoint.url, |hook| {
        // Only new pending orders: the query and the kind filter the log.
        hook.events = vec!["created".to_owned()];
        hook.query = Some(json!({ "field": "data.status", "eq": "pending" }));
    });
    let restarted = hooked(&endpoint.url, |hook| {
        hook.events = vec!["created".to_owned()];
        hook.query = Some(json!({ "field": "data.status", "eq": "pending" }));
    });
    let Some(server) = start(postgres, config).await else { return };
    let (alice, _pushes) = server.signed_in("alice").await;
    let (admin, _admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    let first = order(&alice, "P1").await;
    call(&admin, "update", "u", json!({ "resourceType": "order", "id": first, "patch": { "status": "paid" } })).await;
    order(&alice, "P2").await;
    endpoint.until(2, "two creations", |r| seqs(r).len() >= 2).await;
    assert_eq!(seqs(&endpoint.received()), [1, 3], "the update is filtered out");

    let reply = rest::send(
        server.addr,
        "POST",
        "/api/v1/admin/webhooks/orders-out/replay?from=2",
        &[("X-Api-Key", API_KEY)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    endpoint.until(2, "the replay", |r| seqs(r).len() >= 3).await;
    assert_eq!(seqs(&endpoint.received()), [1, 3, 3], "from seq 2 on, again");
    let missing =
        rest::send(server.addr, "POST", "/api/v1/admin/webhooks/nope/pause", &[("X-Api-Key", API_KEY)], b"").await;
    assert_eq!(missing.status, 404);
    // A bad replay point is answered in the API's error format, saying what is wrong.
    for path in ["/api/v1/admin/webhooks/orders-out/replay?from=soon", "/api/v1/admin/webhooks/orders-out/replay"] {
        let bad = rest::send(server.addr, "POST", path, &[("X-Api-Key", API_KEY)], b"").await;
        assert_eq!((bad.status, bad.json()["code"].as_str()), (400, Some("INVALID_PARAMS")), "{path}: {bad:?}");
    }

    // A restart goes on from the stored cursor: what was delivered is not posted again, what came after is.
    let server = server.restart_with(restarted).await;
    let (alice, _pushes) = server.signed_in("alice").await;
    order(&alice, "P3").await;
    endpoint.until(2, "the order after the restart", |r| seqs(r).len() >= 4).await;
    assert_eq!(seqs(&endpoint.received()), [1, 3, 3, 4]);
}

/// The verifiers docs/webhooks.md gives, in Python and in Node, run as written on a request the endpoint got.
#[tokio::test]
async fn the_verifiers_of_the_docs_accept_a_real_request_and_refuse_a_forged_one() {
    let endpoint = Receiver::start().await;
    let server = TestServer::start_with(hooked(&endpoint.url, |_| {})).await;
    let (alice, _pushes) = server.signed_in("alice").await;
    order(&alice, "P1").await;
    endpoint.until(2, "an event", |r| seqs(r).len() == 1).await;
    let request = endpoint.accepted().remove(0);
    let page = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/webhooks.md"))
        .expect("docs/webhooks.md");
    let block = |language: &str| {
        let start = page.find(&format!("```{language}\n")).expect("the example") + language.len() + 4;
        page[start..].split("```").next().expect("its end").to_owned()
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("body"), &request.body).expect("the body");
    let headers = json!({ "webhook-id": request.id, "webhook-timestamp": request.timestamp, "webhook-signature": request.signature });
    let forged =
        json!({ "webhook-id": request.id, "webhook-timestamp": request.timestamp, "webhook-signature": "v1,Zm9yZ2Vk" });
    let python = format!(
        "{}\nbody = open('body', 'rb').read()\nprint(verify({SECRET:?}, {headers}, body), verify({SECRET:?}, {forged}, body))\n",
        block("python")
    );
    let node = format!(
        "{}\nimport {{ readFileSync }} from 'node:fs';\nconst body = readFileSync('body');\nconsole.log(verify({SECRET:?}, {headers}, body), verify({SECRET:?}, {forged}, body));\n",
        block("js")
    );
    std::fs::write(dir.path().join("verify.py"), python).expect("written");
    std::fs::write(dir.path().join("verify.mjs"), node).expect("written");
    for (program, file, expected) in [("python3", "verify.py", "True False"), ("node", "verify.mjs", "true false")] {
        let output = std::process::Command::new(program)
            .arg(file)
            .current_dir(dir.path())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"));
        let said = String::from_utf8_lossy(&output.stdout);
        assert_eq!(said.trim(), expected, "{program}: {}", String::from_utf8_lossy(&output.stderr));
    }
}
