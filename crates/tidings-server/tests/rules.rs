//! Access rules over claims and data, end to end: the multi-tenant `project` type of docs/resource-types.md, run
//! as the page writes it, with members of two organizations and an admin, over WebSocket and HTTP, for reads,
//! writes, list pages, subscriptions with and without a query, one-resource topics, resume with `since` and a
//! re-authentication with new claims. No reply, event or page may show a project to someone the rules do not let
//! see it, and a project that moves out of someone's sight must tell them it left.
//!
//! "Nothing else arrived" is proven without waiting: after the changes that must not be delivered, one that must
//! is made, and it has to be the very next push. Every test runs on SQLite and on PostgreSQL.

mod common;

use std::path::Path;

use common::jwks::{Provider, SigningKey, AUDIENCE, ISSUER};
use common::{call, exchange, expect, next_event, next_push, on_both_backends_with, outcome, rest, seen, TestServer};
use serde_json::{json, Value};
use tidings_client::{Client, Pushes};
use tidings_protocol::{LeaveReason, ServerMessage};
use tidings_server::Config;

on_both_backends_with!(
    super::tenants;
    members_reach_their_organization_and_nobody_else_learns_of_it,
    a_project_that_moves_away_leaves_every_view_of_the_members_who_lose_it,
    resume_and_new_claims_see_only_what_the_rule_allows,
    a_field_hidden_from_a_member_is_in_no_reply_event_or_query_of_theirs,
);

/// The resource types of the multi-tenant example in docs/resource-types.md, read from the page.
fn tenants(config: &mut Config) {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/resource-types.md"))
        .expect("docs/resource-types.md");
    let block = page
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .find(|block| block.starts_with("# tenants.toml"))
        .expect("the tenants.toml block");
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, block).expect("written");
    config.resource_types = Config::load(Some(&file)).expect("the page's config loads").resource_types;
}

/// A member of `org` (or an admin, with no organization), signed in over WebSocket.
async fn member(server: &TestServer, user: &str, org: Option<&str>, roles: &[&str]) -> (Client, Pushes) {
    let (client, pushes) = server.connected().await;
    client.auth(&server.token_with(user, roles, json!({ "org": org }))).await.expect("signs in");
    (client, pushes)
}

async fn create(client: &Client, org: &str, name: &str) -> String {
    let data = json!({ "orgId": org, "name": name });
    let created =
        call(client, "create", &format!("c-{name}"), json!({ "resourceType": "project", "data": data })).await;
    created["id"].as_str().expect("an id").to_owned()
}

async fn patch(client: &Client, id: &str, patch: Value) {
    call(client, "update", "u", json!({ "resourceType": "project", "id": id, "patch": patch })).await;
}

/// Every project of a list, page by page, `limit` at a time: (ids, organizations).
async fn list_all(client: &Client, limit: u64) -> (Vec<String>, Vec<String>) {
    let (mut ids, mut orgs, mut cursor) = (Vec::new(), Vec::new(), Value::Null);
    loop {
        let page =
            call(client, "read", "l", json!({ "resourceType": "project", "limit": limit, "cursor": cursor })).await;
        let items = page["items"].as_array().expect("items").clone();
        assert!(items.len() as u64 == limit || page["nextCursor"].is_null(), "pages stay full: {page}");
        for item in items {
            ids.push(item["id"].as_str().expect("an id").to_owned());
            orgs.push(item["data"]["orgId"].as_str().expect("an org").to_owned());
        }
        cursor = page["nextCursor"].clone();
        if cursor.is_null() {
            return (ids, orgs);
        }
    }
}

async fn members_reach_their_organization_and_nobody_else_learns_of_it(server: TestServer) {
    let (anon, _n) = server.connected().await;
    let (ann, _a) = member(&server, "ann", Some("acme"), &[]).await;
    let (ben, _b) = member(&server, "ben", Some("acme"), &[]).await;
    let (gus, _g) = member(&server, "gus", Some("globex"), &[]).await;
    let (root, _r) = member(&server, "root", None, &["admin"]).await;

    // Creates: in one's own organization, without a budget.
    let mine = json!({ "resourceType": "project", "data": { "orgId": "acme", "name": "Roadmap" } });
    let theirs = json!({ "resourceType": "project", "data": { "orgId": "globex", "name": "Spy" } });
    let budget = json!({ "resourceType": "project", "data": { "orgId": "acme", "name": "Rich", "budget": 9 } });
    assert_eq!(outcome(&ann, "create", mine).await, "ok");
    assert_eq!(outcome(&ann, "create", theirs).await, "FORBIDDEN");
    assert_eq!(outcome(&ann, "create", budget).await, "FORBIDDEN");
    let roadmap = create(&ann, "acme", "roadmap").await;

    // Reads and writes of an acme project, by each actor. A fresh project per actor, so deletes do not interfere.
    let actors: [(&str, &Client); 5] =
        [("anonymous", &anon), ("ann", &ann), ("ben", &ben), ("gus", &gus), ("root", &root)];
    let mut table = Vec::new();
    for (name, client) in actors {
        let id = create(&ann, "acme", &format!("for-{name}")).await;
        let at = |patch: Value| json!({ "resourceType": "project", "id": id, "patch": patch });
        let row = [
            outcome(client, "read", json!({ "resourceType": "project", "id": id })).await,
            outcome(client, "update", at(json!({ "name": "renamed" }))).await,
            outcome(client, "update", at(json!({ "budget": 100 }))).await,
            outcome(client, "update", at(json!({ "orgId": "initech" }))).await,
            outcome(client, "subscribe", json!({ "topic": format!("project:{id}") })).await,
            outcome(client, "delete", json!({ "resourceType": "project", "id": id })).await,
        ];
        table.push((name, row.to_vec()));
    }
    let expected = [
        ("anonymous", ["UNAUTHORIZED"; 6]),
        // The creator: everything of her organization's project but the budget and the organization.
        ("ann", ["ok", "ok", "FORBIDDEN", "FORBIDDEN", "ok", "ok"]),
        // A member who did not create it: the same, but only its creator deletes it.
        ("ben", ["ok", "ok", "FORBIDDEN", "FORBIDDEN", "ok", "FORBIDDEN"]),
        // Another organization: the project does not exist for him.
        ("gus", ["NOT_FOUND"; 6]),
        ("root", ["ok", "ok", "ok", "ok", "ok", "ok"]),
    ];
    for ((name, got), (expected_name, want)) in table.iter().zip(expected) {
        assert_eq!(*name, expected_name);
        assert_eq!(got, &want.map(str::to_owned).to_vec(), "{name}: read, rename, budget, move, subscribe, delete");
    }

    // Lists are filtered in the database: full pages of one's own organization only, and a count of them.
    for n in 0..4 {
        create(&gus, "globex", &format!("g{n}")).await;
    }
    let (acme_ids, acme_orgs) = list_all(&ann, 2).await;
    assert!(acme_orgs.iter().all(|org| org == "acme"), "{acme_orgs:?}");
    assert!(acme_ids.contains(&roadmap));
    let (ben_ids, _) = list_all(&ben, 3).await;
    assert_eq!(ben_ids, acme_ids, "members of one organization see the same list");
    let (globex_ids, globex_orgs) = list_all(&gus, 3).await;
    assert_eq!(globex_orgs, ["globex"; 4]);
    let (all_ids, _) = list_all(&root, 5).await;
    assert_eq!(all_ids.len(), acme_ids.len() + globex_ids.len(), "an admin lists every project");
    let counted = call(&gus, "read", "n", json!({ "resourceType": "project", "count": true, "limit": 1 })).await;
    assert_eq!(counted["total"], 4, "a count counts what the user may see: {counted}");
    // A cursor of one organization's list does not page through another's.
    let page = call(&ann, "read", "p", json!({ "resourceType": "project", "limit": 1 })).await;
    let stolen = json!({ "resourceType": "project", "limit": 1, "cursor": page["nextCursor"] });
    assert_eq!(outcome(&gus, "read", stolen).await, "INVALID_PARAMS");

    // The HTTP API applies the same rule.
    let token = format!("Bearer {}", server.token_with("gus", &[], json!({ "org": "globex" })));
    let auth = [("Authorization", token.as_str())];
    let listed = rest::send(server.addr, "GET", "/api/v1/resources/project?limit=100", &auth, b"").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let orgs: Vec<Value> =
        listed.json()["items"].as_array().expect("items").iter().map(|i| i["data"]["orgId"].clone()).collect();
    assert_eq!(orgs, vec![json!("globex"); 4]);
    let read = rest::send(server.addr, "GET", &format!("/api/v1/resources/project/{roadmap}"), &auth, b"").await;
    assert_eq!(read.status, 404, "{read:?}");
}

async fn a_project_that_moves_away_leaves_every_view_of_the_members_who_lose_it(server: TestServer) {
    let (ann, _a) = member(&server, "ann", Some("acme"), &[]).await;
    let (ben, _b) = member(&server, "ben", Some("acme"), &[]).await;
    let (gus, _g) = member(&server, "gus", Some("globex"), &[]).await;
    let (root, _r) = member(&server, "root", None, &["admin"]).await;
    let roadmap = create(&ann, "acme", "roadmap").await;

    // Ben watches the whole type, the active projects, and the roadmap alone, each on a connection of its own.
    let (whole, mut whole_pushes) = member(&server, "ben", Some("acme"), &[]).await;
    let (query, mut query_pushes) = member(&server, "ben", Some("acme"), &[]).await;
    let (single, mut single_pushes) = member(&server, "ben", Some("acme"), &[]).await;
    let (watcher, mut gus_pushes) = member(&server, "gus", Some("globex"), &[]).await;
    call(&whole, "subscribe", "s", json!({ "topic": "project" })).await;
    let active = json!({ "field": "data.status", "eq": "active" });
    call(&query, "subscribe", "s", json!({ "topic": "project", "query": active })).await;
    call(&single, "subscribe", "s", json!({ "topic": format!("project:{roadmap}") })).await;
    call(&watcher, "subscribe", "s", json!({ "topic": "project" })).await;

    // An acme change reaches acme's views, and no globex subscriber.
    patch(&ann, &roadmap, json!({ "name": "Roadmap 2027" })).await;
    assert_eq!(seen(&next_event(&mut whole_pushes).await), expect("project_updated", &roadmap, None));
    assert_eq!(seen(&next_event(&mut query_pushes).await), expect("project_updated", &roadmap, None));
    assert_eq!(seen(&next_event(&mut single_pushes).await), expect("project_updated", &roadmap, None));
    let secret = create(&ben, "acme", "secret").await;
    assert_eq!(seen(&next_event(&mut whole_pushes).await), expect("project_created", &secret, None));
    assert_eq!(seen(&next_event(&mut query_pushes).await), expect("project_created", &secret, None));

    // The admin moves the roadmap to globex: it leaves each of ben's views, saying only that it is hidden now,
    // and enters gus's whole-type view with all its data. That is the first event gus ever hears.
    patch(&root, &roadmap, json!({ "orgId": "globex" })).await;
    for pushes in [&mut whole_pushes, &mut query_pushes, &mut single_pushes] {
        let left = next_event(pushes).await;
        assert_eq!(seen(&left), expect("project_left", &roadmap, Some(LeaveReason::Hidden)));
        assert!(left.data.is_empty(), "a hidden project's leave carries none of its data: {left:?}");
    }
    let ServerMessage::Unsubscribe(ended) = next_push(&mut single_pushes).await else { panic!("the topic ends") };
    assert_eq!(ended.reason.map(|r| r.code.as_str().to_owned()).as_deref(), Some("NOT_FOUND"));
    let entered = next_event(&mut gus_pushes).await;
    assert_eq!(seen(&entered), expect("project_updated", &roadmap, None));
    assert_eq!(entered.data["orgId"], "globex");
    assert_eq!(entered.data["name"], "Roadmap 2027");

    // From now on its changes are globex's: gus hears them, ben's views do not. The next push of ben's views is
    // the acme change that follows.
    patch(&root, &roadmap, json!({ "name": "Stolen roadmap" })).await;
    assert_eq!(seen(&next_event(&mut gus_pushes).await), expect("project_updated", &roadmap, None));
    patch(&ben, &secret, json!({ "status": "archived" })).await;
    assert_eq!(seen(&next_event(&mut whole_pushes).await), expect("project_updated", &secret, None));
    assert_eq!(
        seen(&next_event(&mut query_pushes).await),
        expect("project_left", &secret, Some(LeaveReason::Unmatched))
    );
    // Gus never heard of the acme project: his next push is the next globex change.
    let plans = create(&gus, "globex", "plans").await;
    assert_eq!(seen(&next_event(&mut gus_pushes).await), expect("project_created", &plans, None));
}

async fn resume_and_new_claims_see_only_what_the_rule_allows(server: TestServer) {
    let (ann, _a) = member(&server, "ann", Some("acme"), &[]).await;
    let (gus, _g) = member(&server, "gus", Some("globex"), &[]).await;
    let (root, _r) = member(&server, "root", None, &["admin"]).await;
    let start = call(&root, "subscribe", "s", json!({ "topic": "project" })).await["seq"].as_u64().expect("a seq");

    let roadmap = create(&ann, "acme", "roadmap").await;
    let plans = create(&gus, "globex", "plans").await;
    patch(&ann, &roadmap, json!({ "name": "Roadmap 2027" })).await;
    patch(&root, &roadmap, json!({ "orgId": "globex" })).await;
    patch(&gus, &plans, json!({ "name": "Plans 2027" })).await;

    // Gus resumes from before it all: the replay holds exactly what he may see, as he would have seen it live.
    let (resumed, mut pushes) = member(&server, "gus", Some("globex"), &[]).await;
    let reply = call(&resumed, "subscribe", "s", json!({ "topic": "project", "since": start })).await;
    assert_eq!(reply["recovered"], true, "{reply}");
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(seen(&next_event(&mut pushes).await));
    }
    assert_eq!(
        replayed,
        [
            expect("project_created", &plans, None),
            expect("project_updated", &roadmap, None),
            expect("project_updated", &plans, None),
        ]
    );
    // Ann, resuming, hears of her roadmap until it was hidden from her, and of nothing of globex's.
    let (ann_resumed, mut ann_pushes) = member(&server, "ann", Some("acme"), &[]).await;
    call(&ann_resumed, "subscribe", "s", json!({ "topic": "project", "since": start })).await;
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(seen(&next_event(&mut ann_pushes).await));
    }
    assert_eq!(
        replayed,
        [
            expect("project_created", &roadmap, None),
            expect("project_updated", &roadmap, None),
            expect("project_left", &roadmap, Some(LeaveReason::Hidden)),
        ]
    );

    // Ann's token changes organization: her subscription follows the new claims from then on.
    ann_resumed.auth(&server.token_with("ann", &[], json!({ "org": "globex" }))).await.expect("re-authenticates");
    let acme_again = create(&root_as_acme(&server).await, "acme", "unseen").await;
    patch(&gus, &plans, json!({ "status": "archived" })).await;
    let next = next_event(&mut ann_pushes).await;
    assert_eq!(seen(&next), expect("project_updated", &plans, None), "not {acme_again}, which acme alone may see");
}

/// A member of acme other than ann, to make an acme change after ann moved to globex.
async fn root_as_acme(server: &TestServer) -> Client {
    member(server, "ada", Some("acme"), &[]).await.0
}

/// The tenants of the page, signed in by an identity provider whose keys rotate while they are connected: the
/// rules read the provider's claims (`org`, and roles at `realm_access.roles`) as they read any others.
#[tokio::test]
async fn tenants_signed_in_by_a_provider_whose_keys_rotate() {
    let (first, second) = (SigningKey::es256("key-1"), SigningKey::ed25519("key-2"));
    let provider = Provider::start(&[&first]).await;
    let url = provider.url.clone();
    let server = TestServer::start_with(move |config| {
        tenants(config);
        config.auth.secret = None;
        config.auth.jwks_url = Some(url);
        config.auth.issuer = Some(ISSUER.to_owned());
        config.auth.audience = Some(AUDIENCE.to_owned());
        config.auth.roles_claim = Some("realm_access.roles".to_owned());
    })
    .await;
    let member_claims = |org: &str| json!({ "org": org, "realm_access": { "roles": [] } });
    let serving = &server;
    let signed_in = |token: String| async move {
        let (client, pushes) = serving.connected().await;
        client.auth(&token).await.expect("signs in");
        (client, pushes)
    };
    let (ann, mut ann_pushes) = signed_in(first.token("ann", member_claims("acme"))).await;
    call(&ann, "subscribe", "s", json!({ "topic": "project" })).await;

    // The provider rotates to a new key; gus of globex signs in with it, and works in his organization.
    provider.rotate(&[&second]);
    let (gus, _gus_pushes) = signed_in(second.token("gus", member_claims("globex"))).await;
    let plans = create(&gus, "globex", "plans").await;
    let spying = json!({ "resourceType": "project", "id": plans });
    assert_eq!(outcome(&ann, "read", spying).await, "NOT_FOUND");

    // Ann's connection, signed in with the old key, renews with the new one and goes on; the next event she
    // hears is her own organization's, not gus's.
    call(&ann, "auth", "renew", json!({ "token": second.token("ann", member_claims("acme")) })).await;
    let roadmap = create(&ann, "acme", "roadmap").await;
    assert_eq!(seen(&next_event(&mut ann_pushes).await), expect("project_created", &roadmap, None));

    // The provider's admin (roles from `realm_access.roles`) lists both organizations' projects.
    let admin_claims = json!({ "realm_access": { "roles": ["admin"] } });
    let (admin, _admin_pushes) = signed_in(second.token("root", admin_claims)).await;
    let (ids, _) = list_all(&admin, 10).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&plans) && ids.contains(&roadmap));
}

async fn a_field_hidden_from_a_member_is_in_no_reply_event_or_query_of_theirs(server: TestServer) {
    let (ann, _a) = member(&server, "ann", Some("acme"), &[]).await;
    let (fin, _f) = member(&server, "fay", Some("acme"), &["finance"]).await;
    let (root, _r) = member(&server, "root", None, &["admin"]).await;
    let roadmap = create(&ann, "acme", "roadmap").await;
    let (ann_watch, mut ann_pushes) = member(&server, "ann", Some("acme"), &[]).await;
    let (fin_watch, mut fin_pushes) = member(&server, "fay", Some("acme"), &["finance"]).await;
    let (ann_one, mut ann_one_pushes) = member(&server, "ann", Some("acme"), &[]).await;
    call(&ann_watch, "subscribe", "s", json!({ "topic": "project" })).await;
    call(&fin_watch, "subscribe", "s", json!({ "topic": "project" })).await;
    call(&ann_one, "subscribe", "s", json!({ "topic": format!("project:{roadmap}") })).await;

    // Only an admin sets the budget; the reply to his own write shows it to him.
    let budget = json!({ "resourceType": "project", "id": roadmap, "patch": { "budget": 5000 } });
    assert_eq!(outcome(&fin, "update", budget.clone()).await, "FORBIDDEN");
    let updated = call(&root, "update", "u", budget).await;
    assert_eq!(updated["data"]["budget"], 5000);

    // The change reaches both members; only the finance role sees the budget in it.
    let seen_by_ann = next_event(&mut ann_pushes).await;
    assert_eq!(seen(&seen_by_ann), expect("project_updated", &roadmap, None));
    assert!(!seen_by_ann.data.contains_key("budget") && seen_by_ann.data["name"] == "roadmap", "{seen_by_ann:?}");
    assert_eq!(seen_by_ann.changed, Some(Vec::new()), "nor that it was the budget that changed");
    let one = next_event(&mut ann_one_pushes).await;
    assert!(!one.data.contains_key("budget"), "{one:?}");
    let seen_by_fin = next_event(&mut fin_pushes).await;
    assert_eq!(
        (seen_by_fin.data["budget"].clone(), seen_by_fin.changed),
        (json!(5000), Some(vec!["budget".to_owned()]))
    );

    // Reads, lists, snapshots and the HTTP API leave it out for ann, and keep it for the finance role.
    let read = json!({ "resourceType": "project", "id": roadmap });
    assert!(call(&ann, "read", "r", read.clone()).await["data"].get("budget").is_none());
    assert_eq!(call(&fin, "read", "r", read).await["data"]["budget"], 5000);
    let list = call(&ann, "read", "l", json!({ "resourceType": "project" })).await;
    assert!(list["items"].as_array().expect("items").iter().all(|item| item["data"].get("budget").is_none()));
    let (snap, _s) = member(&server, "ann", Some("acme"), &[]).await;
    let snapshot = call(&snap, "subscribe", "s", json!({ "topic": "project", "snapshot": true })).await;
    assert_eq!(snapshot["items"].as_array().expect("items").len(), 1);
    assert!(snapshot["items"][0]["data"].get("budget").is_none(), "{snapshot}");
    let token = format!("Bearer {}", server.token_with("ann", &[], json!({ "org": "acme" })));
    let path = format!("/api/v1/resources/project/{roadmap}");
    let over_http = rest::send(server.addr, "GET", &path, &[("Authorization", token.as_str())], b"").await;
    assert_eq!(over_http.status, 200, "{over_http:?}");
    assert!(over_http.json()["data"].get("budget").is_none(), "{over_http:?}");

    // Nor may ann learn it by asking: filters, orders, projections and queries on it are refused at the term.
    let asks = [
        (json!({ "resourceType": "project", "filter": { "budget": 5000 } }), "/payload/filter/budget"),
        (json!({ "resourceType": "project", "orderBy": "budget" }), "/payload/orderBy"),
        (json!({ "resourceType": "project", "fields": ["name", "budget"] }), "/payload/fields/1"),
        (json!({ "resourceType": "project", "query": { "field": "data.budget", "gt": 1000 } }), "/payload/query"),
    ];
    for (ask, pointer) in asks {
        let (kind, reply) = exchange(&ann, "read", "q", ask.clone()).await;
        assert_eq!(kind, "error", "{ask}: {reply}");
        assert_eq!(reply["code"], "INVALID_PARAMS", "{reply}");
        assert!(reply["details"]["errors"].to_string().contains(pointer), "{pointer} in {reply}");
    }
    let query = json!({ "topic": "project", "query": { "field": "data.budget", "exists": true } });
    assert_eq!(outcome(&ann, "subscribe", query.clone()).await, "INVALID_PARAMS");
    assert_eq!(outcome(&fin, "subscribe", query).await, "ok");
}
