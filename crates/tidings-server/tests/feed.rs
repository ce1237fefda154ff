//! The event feed for servers, `GET /api/v1/events` as Server-Sent Events: read as `curl -N` would, it replays
//! after `since`, goes live with each event once, resumes from `Last-Event-ID`, says `reset` when it cannot, and
//! is authorized like a subscription. Each on SQLite and PostgreSQL.

mod common;

use common::sse::Feed;
use common::{call, on_both_backends, TestServer};
use serde_json::json;
use tidings_client::Client;

on_both_backends!(
    a_feed_replays_after_since_then_goes_live_with_each_event_once,
    a_feed_shows_only_what_its_user_may_read_and_refuses_what_it_cannot_follow,
);

async fn order(client: &Client, product: &str) -> String {
    let data = json!({ "productId": product, "quantity": 1, "totalAmount": 5 });
    let created =
        call(client, "create", &format!("c-{product}"), json!({ "resourceType": "order", "data": data })).await;
    created["id"].as_str().expect("an id").to_owned()
}

fn bearer(server: &TestServer, user: &str, roles: &[&str]) -> String {
    format!("Bearer {}", server.token_with(user, roles, json!({})))
}

async fn a_feed_replays_after_since_then_goes_live_with_each_event_once(server: TestServer) {
    let (alice, _pushes) = server.signed_in("alice").await;
    let first = order(&alice, "P1").await;
    order(&alice, "P2").await;
    let admin = bearer(&server, "root", &["admin"]);
    let auth = [("Authorization", admin.as_str())];

    let mut feed = Feed::open(server.addr, "/api/v1/events?topic=order&since=0", &auth).await;
    assert_eq!(feed.status, 200, "{}", feed.refusal);
    for seq in [1, 2] {
        let event = feed.next().await;
        assert_eq!((event.id.as_deref(), event.event.as_str()), (Some(seq.to_string().as_str()), "message"));
        let message = event.json();
        assert_eq!((message["type"].clone(), message["payload"]["seq"].clone()), (json!("event"), json!(seq)));
    }
    // Live: the next change is the next event, once.
    call(&alice, "update", "u", json!({ "resourceType": "order", "id": first, "patch": { "quantity": 4 } })).await;
    let live = feed.next().await;
    assert_eq!(live.id.as_deref(), Some("3"));
    assert_eq!(live.json()["payload"]["changed"], json!(["quantity"]));
    order(&alice, "P3").await;
    assert_eq!(feed.next().await.id.as_deref(), Some("4"), "nothing between, nothing twice");

    // A client that stopped after 3 resumes with Last-Event-ID, as EventSource does: 4, then live.
    let resume = [("Authorization", admin.as_str()), ("Last-Event-ID", "3")];
    let mut resumed = Feed::open(server.addr, "/api/v1/events?topic=order&since=0", &resume).await;
    assert_eq!(resumed.next().await.id.as_deref(), Some("4"));
    order(&alice, "P4").await;
    assert_eq!(resumed.next().await.id.as_deref(), Some("5"));
    assert_eq!(feed.next().await.id.as_deref(), Some("5"));

    // A `since` past the log's end is another log: the feed says so, then goes on live.
    let mut reset = Feed::open(server.addr, "/api/v1/events?topic=order&since=99", &auth).await;
    let said = reset.next().await;
    assert_eq!((said.event.as_str(), said.json()["recovered"].clone()), ("reset", json!(false)));
    order(&alice, "P5").await;
    assert_eq!(reset.next().await.id.as_deref(), Some("6"));

    // One resource's topic: its versions.
    let path = format!("/api/v1/events?topic=order:{first}&since=0");
    let mut one = Feed::open(server.addr, &path, &auth).await;
    assert_eq!([one.next().await.id, one.next().await.id], [Some("1".to_owned()), Some("2".to_owned())]);
}

async fn a_feed_shows_only_what_its_user_may_read_and_refuses_what_it_cannot_follow(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    let (bob, _b) = server.signed_in("bob").await;
    let bobs = bearer(&server, "bob", &[]);
    let auth = [("Authorization", bobs.as_str())];
    let mut feed = Feed::open(server.addr, "/api/v1/events?topic=order", &auth).await;
    assert_eq!(feed.status, 200, "{}", feed.refusal);
    order(&alice, "A1").await;
    let own = order(&bob, "B1").await;
    let event = feed.next().await;
    assert_eq!(event.json()["payload"]["id"], json!(own), "alice's order is not bob's to see: his own comes first");

    let refused = [
        ("/api/v1/events?topic=order", vec![], 401),
        ("/api/v1/events", auth.to_vec(), 400),
        ("/api/v1/events?topic=notifications", auth.to_vec(), 400),
        ("/api/v1/events?topic=nope", auth.to_vec(), 404),
        ("/api/v1/events?topic=order&since=soon", auth.to_vec(), 400),
        ("/api/v1/events?topic=order", [auth.to_vec(), vec![("Last-Event-ID", "yesterday")]].concat(), 400),
    ];
    for (path, headers, status) in refused {
        let feed = Feed::open(server.addr, path, &headers).await;
        assert_eq!(feed.status, status, "{path}: {}", feed.refusal);
    }
    let alices = order(&alice, "A2").await;
    let path = format!("/api/v1/events?topic=order:{alices}");
    assert_eq!(Feed::open(server.addr, &path, &auth).await.status, 404, "another user's order does not exist for bob");
}
