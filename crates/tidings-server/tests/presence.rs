//! Presence and ephemeral broadcast on one node (docs/protocol.md, 8.7 and 8.8): who is at an order, as members
//! join, change their state and leave (on purpose, by closing, or by falling silent); who may see and join; the
//! bounds; and an ephemeral type whose messages reach its subscribers and are stored nowhere.

mod common;

use common::raw;
use common::{call, exchange, next_event, TestServer};
use serde_json::{json, Value};
use tidings_client::Client;
use tidings_protocol::Event;
use tidings_server::Config;

async fn order(client: &Client) -> String {
    static ORDERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let request_id = format!("order-{}", ORDERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let data = json!({ "productId": "P1", "quantity": 1, "totalAmount": 5 });
    call(client, "create", &request_id, json!({ "resourceType": "order", "data": data })).await["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

async fn join(client: &Client, topic: &str, state: Value) -> Value {
    call(client, "create", "join", json!({ "resourceType": "presence", "data": { "topic": topic, "state": state } }))
        .await
}

/// A presence event's type, member id, user and state.
fn seen(event: &Event) -> (String, String, String, Value) {
    (
        event.event_type.as_str().to_owned(),
        event.id.as_ref().map(|id| id.as_str().to_owned()).unwrap_or_default(),
        event.owner_id.as_ref().map(|user| user.as_str().to_owned()).unwrap_or_default(),
        event.data["state"].clone(),
    )
}

/// The next `unsubscribe` push: a subscription the server ended.
async fn ended(pushes: &mut tidings_client::Pushes) -> tidings_protocol::Unsubscribed {
    loop {
        if let tidings_protocol::ServerMessage::Unsubscribe(ended) = common::next_push(pushes).await {
            return ended;
        }
    }
}

fn expect(event_type: &str, member: &Value, user: &str, state: Value) -> (String, String, String, Value) {
    let id = member["id"].as_str().unwrap_or_default().to_owned();
    (format!("presence_{event_type}"), id, user.to_owned(), state)
}

#[tokio::test]
async fn followers_see_who_is_there_then_who_comes_changes_and_goes() {
    let server = TestServer::start().await;
    let (alice, mut pushes) = server.signed_in("alice").await;
    let (root, _root_pushes) = server.signed_in_as("root", &["admin"]).await;
    let id = order(&alice).await;
    let topic = format!("order:{id}");
    let followed = format!("presence:{topic}");

    let reply = call(&alice, "subscribe", "s", json!({ "topic": followed })).await;
    assert_eq!((reply["subscriptionId"].as_str(), reply["items"].clone()), (Some(followed.as_str()), json!([])));

    // Root joins, changes what he is doing, and a second tab of Alice's joins too.
    let member = join(&root, &topic, json!({ "name": "Root", "status": "viewing" })).await;
    assert_eq!((member["resourceType"].as_str(), member["ownerId"].as_str()), (Some("presence"), Some("root")));
    assert_eq!(member["data"]["topic"], topic.as_str());
    let event = next_event(&mut pushes).await;
    assert_eq!(seen(&event), expect("created", &member, "root", json!({ "name": "Root", "status": "viewing" })));
    assert_eq!((event.topic.as_ref().map(|t| t.as_str()), event.seq), (Some(followed.as_str()), None), "no seq");
    let patch = json!({ "state": { "status": "editing" } });
    let edited =
        call(&root, "update", "u", json!({ "resourceType": "presence", "id": member["id"], "patch": patch })).await;
    assert_eq!((edited["version"].as_u64(), edited["data"]["state"]["name"].as_str()), (Some(2), Some("Root")));
    let event = next_event(&mut pushes).await;
    assert_eq!(seen(&event), expect("updated", &member, "root", json!({ "name": "Root", "status": "editing" })));
    let (tab, _tab_pushes) = server.signed_in("alice").await;
    let second = join(&tab, &topic, json!({ "name": "Alice" })).await;
    assert_eq!(seen(&next_event(&mut pushes).await), expect("created", &second, "alice", json!({ "name": "Alice" })));

    // A newcomer sees both members, Alice's tab grouped under her user, and Root's state as it is now.
    let (carol, mut carol_pushes) = server.signed_in_as("carol", &["admin"]).await;
    let reply = call(&carol, "subscribe", "s", json!({ "topic": followed })).await;
    let mut members: Vec<(String, Value)> = reply["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| (m["ownerId"].as_str().unwrap_or_default().to_owned(), m["data"]["state"].clone()))
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        members,
        [
            ("alice".to_owned(), json!({ "name": "Alice" })),
            ("root".to_owned(), json!({ "name": "Root", "status": "editing" }))
        ]
    );

    // Root leaves on purpose; Alice's tab leaves by closing.
    let left = call(&root, "delete", "d", json!({ "resourceType": "presence", "id": member["id"] })).await;
    assert_eq!((left["id"].clone(), left["version"].as_u64()), (member["id"].clone(), Some(3)));
    for followers in [&mut pushes, &mut carol_pushes] {
        assert_eq!(seen(&next_event(followers).await).0, "presence_deleted");
    }
    tab.close();
    for followers in [&mut pushes, &mut carol_pushes] {
        let event = next_event(followers).await;
        assert_eq!(
            (seen(&event).0, seen(&event).1),
            ("presence_deleted".to_owned(), second["id"].as_str().unwrap_or_default().to_owned())
        );
    }
    let reply = call(&carol, "subscribe", "again", json!({ "topic": format!("presence:order") })).await;
    assert_eq!(reply["items"], json!([]), "nobody is at the orders' topic itself");
}

#[tokio::test]
async fn a_connection_that_falls_silent_leaves_within_the_idle_timeout() {
    let server = TestServer::start_with(|c| {
        c.heartbeat.ping_interval_ms = 100;
        c.heartbeat.idle_timeout_ms = 400;
    })
    .await;
    let (alice, mut pushes) = server.signed_in("alice").await;
    call(&alice, "subscribe", "s", json!({ "topic": "presence:order" })).await;
    let mut silent = raw::open(server.addr).await;
    let auth = json!({ "type": "auth", "timestamp": 1, "payload": { "token": server.token("bob") } });
    silent.send_text(&auth.to_string()).await;
    let join = json!({ "type": "create", "timestamp": 1, "requestId": "j",
                      "payload": { "resourceType": "presence", "data": { "topic": "order", "state": { "name": "Bob" } } } });
    silent.send_text(&join.to_string()).await;
    assert_eq!(next_event(&mut pushes).await.event_type.as_str(), "presence_created");
    // Bob's socket stays open but answers no ping: the server closes it at the idle timeout, and he leaves.
    let (_, code) = silent.until_close().await;
    assert_eq!(code, Some(4000));
    // (Within a bound of its own: the server pings every 100 ms, and each ping would restart a wait for a push.)
    let gone = tokio::time::timeout(common::PATIENCE, next_event(&mut pushes)).await.expect("Bob left");
    assert_eq!(
        (gone.event_type.as_str(), gone.owner_id.as_ref().map(|u| u.as_str())),
        ("presence_deleted", Some("bob"))
    );
}

fn small(config: &mut Config) {
    config.presence.max_members = 2;
    config.presence.max_joins = 2;
    config.presence.max_state_bytes = 64;
}

#[tokio::test]
async fn presence_follows_the_topics_rules_and_its_bounds() {
    let server = TestServer::start_with(small).await;
    let (alice, _pushes) = server.signed_in("alice").await;
    let (bob, _bob_pushes) = server.signed_in("bob").await;
    let hers = order(&alice).await;
    let topic = format!("order:{hers}");

    // Bob may not read Alice's order, so for him it has no presence either.
    let (_, refused) = exchange(&bob, "subscribe", "s", json!({ "topic": format!("presence:{topic}") })).await;
    assert_eq!(refused["code"], "NOT_FOUND", "{refused}");
    let (_, refused) =
        exchange(&bob, "create", "j", json!({ "resourceType": "presence", "data": { "topic": topic } })).await;
    assert_eq!(refused["code"], "NOT_FOUND", "{refused}");

    // Bad members are refused beside the field.
    let cases = [
        (json!({ "topic": "notifications" }), "/payload/data/topic"),
        (json!({ "topic": "order", "state": "here" }), "/payload/data/state"),
        (json!({ "topic": "order", "state": { "note": "x".repeat(100) } }), "/payload/data/state"),
        (json!({ "topic": "order", "mood": "good" }), "/payload/data/mood"),
    ];
    for (data, pointer) in cases {
        let (_, refused) = exchange(&alice, "create", "j", json!({ "resourceType": "presence", "data": data })).await;
        assert_eq!(
            (refused["code"].as_str(), refused["details"]["errors"][0]["pointer"].as_str()),
            (Some("INVALID_PARAMS"), Some(pointer))
        );
    }

    // Two members per topic, two topics per connection, one member per connection and topic.
    let first = join(&alice, "order", json!({})).await;
    let (_, again) =
        exchange(&alice, "create", "j", json!({ "resourceType": "presence", "data": { "topic": "order" } })).await;
    assert_eq!(
        (again["code"].as_str(), again["details"]["id"].clone()),
        (Some("CONFLICT"), first["id"].clone()),
        "{again}"
    );
    join(&bob, "order", json!({})).await;
    let (carol, _carol_pushes) = server.signed_in("carol").await;
    let (_, full) =
        exchange(&carol, "create", "j", json!({ "resourceType": "presence", "data": { "topic": "order" } })).await;
    assert_eq!(
        (full["code"].as_str(), full["details"]["limit"].as_str()),
        (Some("LIMIT_EXCEEDED"), Some("presence.maxMembers"))
    );
    join(&alice, &topic, json!({})).await;
    let another = format!("order:{}", order(&alice).await);
    let (_, many) =
        exchange(&alice, "create", "j", json!({ "resourceType": "presence", "data": { "topic": another } })).await;
    assert_eq!(
        (many["code"].as_str(), many["details"]["limit"].as_str()),
        (Some("LIMIT_EXCEEDED"), Some("presence.maxJoins"))
    );
    let (_, missing) =
        exchange(&carol, "create", "j", json!({ "resourceType": "presence", "data": { "topic": "order:ORD-X" } }))
            .await;
    assert_eq!(missing["code"], "NOT_FOUND", "a resource that does not exist has no presence");

    // A member is changed only by its own connection, and keeps its topic.
    let patch = json!({ "resourceType": "presence", "id": first["id"], "patch": { "state": { "a": 1 } } });
    let (_, refused) = exchange(&bob, "update", "u", patch).await;
    assert_eq!(refused["code"], "NOT_FOUND");
    let moved = json!({ "resourceType": "presence", "id": first["id"], "patch": { "topic": "stock" } });
    let (_, refused) = exchange(&alice, "update", "u", moved).await;
    assert_eq!(refused["details"]["errors"][0]["pointer"], "/payload/patch/topic", "{refused}");
    let (_, refused) = exchange(&bob, "delete", "d", json!({ "resourceType": "presence", "id": first["id"] })).await;
    assert_eq!(refused["code"], "NOT_FOUND");
}

fn with_cursors(config: &mut Config) {
    let mut cursor = config.resource_types[0].clone();
    cursor.name = "cursor".to_owned();
    cursor.id_prefix = "CUR".to_owned();
    cursor.ephemeral = true;
    cursor.schema = json!({
        "type": "object",
        "properties": { "orderId": { "type": "string" }, "x": { "type": "integer" }, "y": { "type": "integer" } },
        "required": ["orderId", "x", "y"]
    });
    cursor.field_roles.clear();
    cursor.notify_owner_on.clear();
    cursor.indexes.clear();
    cursor.permissions.read = vec![json!("authenticated")];
    config.resource_types.push(cursor);
}

#[tokio::test]
async fn an_ephemeral_type_fans_out_at_once_and_stores_nothing() {
    let server = TestServer::start_with(with_cursors).await;
    let (alice, mut pushes) = server.signed_in("alice").await;
    let (bob, _bob_pushes) = server.signed_in("bob").await;
    let reply = call(&alice, "subscribe", "s", json!({ "topic": "cursor" })).await;
    assert_eq!(reply["seq"], 0);

    let sent =
        call(&bob, "create", "c", json!({ "resourceType": "cursor", "data": { "orderId": "O", "x": 3, "y": 4 } }))
            .await;
    let event = next_event(&mut pushes).await;
    assert_eq!((event.event_type.as_str(), event.seq, event.data["x"].clone()), ("cursor_created", None, json!(3)));
    assert_eq!(event.id.as_ref().map(|id| id.as_str()), sent["id"].as_str());

    // Checked as any create, and never stored: no read, no list, no log, no batch.
    let (_, refused) =
        exchange(&bob, "create", "c", json!({ "resourceType": "cursor", "data": { "orderId": "O", "x": "left" } }))
            .await;
    assert_eq!(refused["code"], "INVALID_PARAMS");
    let (_, missing) = exchange(&bob, "read", "r", json!({ "resourceType": "cursor", "id": sent["id"] })).await;
    assert_eq!(missing["code"], "NOT_FOUND");
    let page = call(&alice, "read", "l", json!({ "resourceType": "cursor", "count": true })).await;
    assert_eq!((page["items"].clone(), page["total"].clone()), (json!([]), json!(0)));
    let (later, _later_pushes) = server.signed_in("alice").await;
    let resumed = call(&later, "subscribe", "s", json!({ "topic": "cursor", "since": 0 })).await;
    assert_eq!((resumed["seq"].clone(), resumed["recovered"].clone()), (json!(0), json!(true)), "nothing to replay");
    let batch = json!({ "operations": [{ "op": "create", "resourceType": "cursor", "data": { "orderId": "O", "x": 1, "y": 1 } }] });
    let (_, refused) = exchange(&bob, "batch", "b", batch).await;
    assert_eq!(refused["details"]["errors"][0]["pointer"], "/payload/operations/0/resourceType", "{refused}");
}

/// A member whose user signs in again with fewer rights leaves the topics they may no longer see.
#[tokio::test]
async fn a_member_leaves_what_a_new_token_no_longer_lets_them_see() {
    let server = TestServer::start().await;
    let (alice, mut pushes) = server.signed_in("alice").await;
    let id = order(&alice).await;
    call(&alice, "subscribe", "s", json!({ "topic": format!("presence:order:{id}") })).await;
    let (root, _root_pushes) = server.signed_in_as("root", &["admin"]).await;
    let member = join(&root, &format!("order:{id}"), json!({ "name": "Root" })).await;
    assert_eq!(seen(&next_event(&mut pushes).await).0, "presence_created");
    // The same user, now without the admin role, may not read Alice's order: his member leaves it.
    root.auth(&server.token_for("root", &[], std::time::Duration::from_secs(3600))).await.expect("signs in again");
    let left = next_event(&mut pushes).await;
    assert_eq!(
        (seen(&left).0, seen(&left).1),
        ("presence_deleted".to_owned(), member["id"].as_str().unwrap_or_default().to_owned())
    );
}

/// When a resource is deleted, its presence ends with it: its members leave, and its followers' subscriptions end
/// NOT_FOUND, as a subscription to the resource's own topic does.
#[tokio::test]
async fn a_deleted_resource_takes_its_presence_with_it() {
    let server = TestServer::start().await;
    let (alice, mut pushes) = server.signed_in("alice").await;
    let id = order(&alice).await;
    let followed = format!("presence:order:{id}");
    call(&alice, "subscribe", "s", json!({ "topic": followed })).await;
    let (root, _root_pushes) = server.signed_in_as("root", &["admin"]).await;
    let member = join(&root, &format!("order:{id}"), json!({ "name": "Root" })).await;
    assert_eq!(seen(&next_event(&mut pushes).await).0, "presence_created");

    call(&alice, "delete", "d", json!({ "resourceType": "order", "id": id })).await;
    assert_eq!(seen(&next_event(&mut pushes).await).0, "presence_deleted");
    let ended = ended(&mut pushes).await;
    assert_eq!(ended.topic.as_ref().map(|t| t.as_str()), Some(followed.as_str()));
    assert_eq!(ended.reason.map(|r| r.code.as_str().to_owned()), Some("NOT_FOUND".to_owned()));
    let patch = json!({ "resourceType": "presence", "id": member["id"], "patch": { "state": { "a": 1 } } });
    let (_, gone) = exchange(&root, "update", "u", patch).await;
    assert_eq!(gone["code"], "NOT_FOUND", "the member ended with the order");
}

/// Orders are their owner's and admins' to read, and anyone's once paid: a read rule that depends on the data.
fn paid_orders_are_public(config: &mut Config) {
    config.resource_types[0].permissions.read =
        vec![json!("owner"), json!("role:admin"), json!({ "field": "resource.data.status", "eq": "paid" })];
}

/// At an order whose read rule depends on its data (paid orders are anyone's to read), a user who may see it
/// only while it is paid loses its presence when it stops being paid: their follow ends FORBIDDEN and their member
/// leaves, as a subscriber of the order's own topic hears it leave their sight. Its owner keeps both.
#[tokio::test]
async fn presence_ends_for_those_a_change_hides_the_resource_from() {
    let server = TestServer::start_with(paid_orders_are_public).await;
    let (alice, mut alice_pushes) = server.signed_in("alice").await;
    let (bob, mut bob_pushes) = server.signed_in("bob").await;
    let (root, _root_pushes) = server.signed_in_as("root", &["admin"]).await;
    let id = order(&alice).await;
    let status = |status: &str, request: &str| {
        let patch = json!({ "resourceType": "order", "id": id, "patch": { "status": status } });
        let root = &root;
        let request = request.to_owned();
        async move { call(root, "update", &request, patch).await }
    };
    status("paid", "paid").await;
    let followed = format!("presence:order:{id}");
    call(&alice, "subscribe", "s", json!({ "topic": followed })).await;
    call(&bob, "subscribe", "s", json!({ "topic": followed })).await;
    let bobs = join(&bob, &format!("order:{id}"), json!({ "name": "Bob" })).await;
    assert_eq!(seen(&next_event(&mut alice_pushes).await), expect("created", &bobs, "bob", json!({ "name": "Bob" })));
    assert_eq!(seen(&next_event(&mut bob_pushes).await).0, "presence_created");

    status("shipped", "shipped").await;
    // Alice, the owner, hears Bob leave; Bob's follow ends, saying why.
    let left = next_event(&mut alice_pushes).await;
    assert_eq!(
        (seen(&left).0, seen(&left).1),
        ("presence_deleted".to_owned(), bobs["id"].as_str().unwrap_or_default().to_owned())
    );
    let ended = ended(&mut bob_pushes).await;
    assert_eq!(ended.topic.as_ref().map(|t| t.as_str()), Some(followed.as_str()));
    assert_eq!(ended.reason.map(|r| r.code.as_str().to_owned()), Some("FORBIDDEN".to_owned()));
    let patch = json!({ "resourceType": "presence", "id": bobs["id"], "patch": { "state": { "a": 1 } } });
    assert_eq!(exchange(&bob, "update", "u", patch).await.1["code"], "NOT_FOUND", "Bob's member left");
    // Alice still follows: the next change she hears is the next one made.
    let alices = join(&alice, &format!("order:{id}"), json!({ "name": "Alice" })).await;
    assert_eq!(
        seen(&next_event(&mut alice_pushes).await),
        expect("created", &alices, "alice", json!({ "name": "Alice" }))
    );
}

/// A follower who signs in again is judged by the new token's claims from then on: an admin who saw every order
/// follows a paid one, signs in again as a plain user (who sees it while it is paid), and loses its presence when
/// it stops being paid.
#[tokio::test]
async fn after_a_new_token_presence_is_judged_by_its_claims() {
    let server = TestServer::start_with(paid_orders_are_public).await;
    let (alice, _alice_pushes) = server.signed_in("alice").await;
    let (root, _root_pushes) = server.signed_in_as("root", &["admin"]).await;
    let (bob, mut bob_pushes) = server.signed_in_as("bob", &["admin"]).await;
    let id = order(&alice).await;
    let paid = json!({ "resourceType": "order", "id": id, "patch": { "status": "paid" } });
    call(&root, "update", "paid", paid).await;
    let followed = format!("presence:order:{id}");
    call(&bob, "subscribe", "s", json!({ "topic": followed })).await;
    bob.auth(&server.token_for("bob", &[], std::time::Duration::from_secs(3600))).await.expect("signs in again");
    let shipped = json!({ "resourceType": "order", "id": id, "patch": { "status": "shipped" } });
    call(&root, "update", "shipped", shipped).await;
    let ended = ended(&mut bob_pushes).await;
    assert_eq!(ended.topic.as_ref().map(|t| t.as_str()), Some(followed.as_str()));
    assert_eq!(ended.reason.map(|r| r.code.as_str().to_owned()), Some("FORBIDDEN".to_owned()));
}
