//! Lists by query (protocol 1.1) over WebSocket on a real server: what matches, paging, who sees what, and the
//! errors a bad query earns, each at its term.
//!
//! Every test runs twice, on SQLite and on PostgreSQL (`NAME::sqlite`, `NAME::postgres`).

mod common;

use std::collections::BTreeSet;

use common::{exchange, on_both_backends, TestServer};
use serde_json::{json, Value};

on_both_backends!(
    a_query_lists_what_matches_page_by_page_and_only_what_the_user_may_see,
    a_bad_query_is_refused_at_each_bad_term,
    the_http_api_lists_by_the_same_query,
    a_list_orders_by_several_keys_projects_fields_and_counts,
);

/// Creates an order as `client` and returns its id.
async fn order(client: &tidings_client::Client, product: &str, total: f64) -> String {
    let data = json!({ "productId": product, "quantity": 1, "totalAmount": total });
    let request_id = format!("c-{product}-{total}");
    let (kind, reply) = exchange(client, "create", &request_id, json!({ "resourceType": "order", "data": data })).await;
    assert_eq!(kind, "create", "{reply}");
    reply["id"].as_str().expect("an id").to_owned()
}

/// Every page of a list by `query`, `limit` at a time: the ids, in order.
async fn list(client: &tidings_client::Client, query: Value, limit: u64) -> Vec<String> {
    let (mut ids, mut cursor) = (Vec::new(), Value::Null);
    loop {
        let mut read = json!({ "resourceType": "order", "query": query, "orderBy": "id", "limit": limit });
        if !cursor.is_null() {
            read["cursor"] = cursor.clone();
        }
        let (kind, page) = exchange(client, "read", "r", read).await;
        assert_eq!(kind, "read", "{page}");
        ids.extend(page["items"].as_array().expect("items").iter().map(|i| i["id"].as_str().expect("id").to_owned()));
        cursor = page["nextCursor"].clone();
        if cursor.is_null() {
            return ids;
        }
    }
}

async fn a_query_lists_what_matches_page_by_page_and_only_what_the_user_may_see(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    let (bob, _b) = server.signed_in("bob").await;
    let (admin, _c) = server.signed_in_as("root", &["admin"]).await;
    let mut big_p = BTreeSet::new();
    for (n, total) in [5.0, 150.0, 99.5, 100.0, 250.0].into_iter().enumerate() {
        let id = order(&alice, &format!("P-{n}"), total).await;
        if total >= 100.0 {
            big_p.insert(id);
        }
    }
    let bobs = order(&bob, "P-bob", 500.0).await;
    order(&bob, "X-bob", 500.0).await;
    let query = json!({ "and": [
        { "field": "data.totalAmount", "gte": 100 },
        { "field": "data.productId", "prefix": "P-" },
    ]});
    // The admin sees everyone's, two at a time, each once and in order.
    let all = list(&admin, query.clone(), 2).await;
    let mut expected: Vec<String> = big_p.iter().cloned().chain([bobs.clone()]).collect();
    expected.sort();
    assert_eq!(all, expected);
    // Alice sees her own only.
    assert_eq!(list(&alice, query.clone(), 100).await, big_p.iter().cloned().collect::<Vec<_>>());
    // `not`, `or`, `in` and own fields.
    let others = json!({ "or": [
        { "field": "ownerId", "eq": "bob" },
        { "not": { "field": "data.productId", "in": ["P-0", "P-1", "P-2", "P-3", "P-4"] } },
    ]});
    assert_eq!(list(&admin, others, 100).await.len(), 2, "bob's two orders");
    // A cursor belongs to its query: another query refuses it.
    let (_, first) =
        exchange(&admin, "read", "r", json!({ "resourceType": "order", "query": query, "limit": 1 })).await;
    let cursor = first["nextCursor"].clone();
    assert!(cursor.is_string(), "{first}");
    let other = json!({ "field": "data.totalAmount", "gte": 0 });
    let (kind, refused) =
        exchange(&admin, "read", "r", json!({ "resourceType": "order", "query": other, "cursor": cursor })).await;
    assert_eq!(
        (kind.as_str(), refused["details"]["errors"][0]["pointer"].as_str()),
        ("error", Some("/payload/cursor"))
    );
}

async fn a_bad_query_is_refused_at_each_bad_term(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    let query = json!({ "and": [
        { "field": "data.totalAmount", "eq": "100" },
        { "field": "data.nope", "exists": true },
        { "field": "data.status", "gt": true },
        { "field": "data.quantity", "prefix": "1" },
    ]});
    let (kind, error) = exchange(&alice, "read", "r", json!({ "resourceType": "order", "query": query })).await;
    assert_eq!((kind.as_str(), error["code"].as_str()), ("error", Some("INVALID_PARAMS")), "{error}");
    let pointers: Vec<&str> =
        error["details"]["errors"].as_array().expect("errors").iter().filter_map(|e| e["pointer"].as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/payload/query/and/0/eq",
            "/payload/query/and/1/field",
            "/payload/query/and/2/gt",
            "/payload/query/and/3/prefix"
        ]
    );
    // A term with two operators is refused by the decoder, before the type is looked at.
    let two = json!({ "field": "data.status", "eq": "pending", "ne": "paid" });
    let (kind, error) = exchange(&alice, "read", "r", json!({ "resourceType": "order", "query": two })).await;
    assert_eq!((kind.as_str(), error["details"]["errors"][0]["pointer"].as_str()), ("error", Some("/payload/query")));
}

/// `text` percent-encoded for a query string: everything but RFC 3986's unreserved characters.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn the_http_api_lists_by_the_same_query(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    let cheap = order(&alice, "P-cheap", 5.0).await;
    let dear = order(&alice, "P-dear", 500.0).await;
    let bearer = format!("Bearer {}", server.token("alice"));
    let get = |query: Value| {
        let path = format!("/api/v1/resources/order?query={}", encoded(&query.to_string()));
        let bearer = bearer.clone();
        let addr = server.addr;
        async move { common::rest::send(addr, "GET", &path, &[("Authorization", &bearer)], b"").await }
    };
    let page = get(json!({ "field": "data.totalAmount", "gt": 100 })).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = page.json();
    let ids: Vec<&str> = body["items"].as_array().expect("items").iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, [dear.as_str()]);
    let page = get(json!({ "not": { "field": "data.totalAmount", "gt": 100 } })).await;
    assert_eq!(page.json()["items"][0]["id"].as_str(), Some(cheap.as_str()));
    // Bad queries are answered at their terms, relative to the request as every HTTP API error is.
    let bad = get(json!({ "and": [{ "field": "data.totalAmount", "gt": "100" }] })).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["details"]["errors"][0]["pointer"], json!("/query/and/0/gt"), "{}", bad.body);
    let unknown = get(json!({ "field": "data.status", "like": "p%" })).await;
    assert_eq!(unknown.json()["details"]["errors"][0]["pointer"], json!("/query/like"), "{}", unknown.body);
    let path = "/api/v1/resources/order?query=not-json";
    let garbage = common::rest::send(server.addr, "GET", path, &[("Authorization", &bearer)], b"").await;
    assert_eq!((garbage.status, garbage.json()["details"]["errors"][0]["pointer"].clone()), (400, json!("/query")));
}

async fn a_list_orders_by_several_keys_projects_fields_and_counts(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    let mut made = Vec::new();
    for (product, total) in [("P-b", 5.0), ("P-a", 50.0), ("P-b", 500.0), ("P-a", 5.0), ("P-c", 50.0)] {
        made.push((product, total, order(&alice, product, total).await));
    }
    // By product ascending, then by total descending; ties of both would go by id, descending.
    let read = json!({ "resourceType": "order", "orderBy": ["productId", "-totalAmount"], "limit": 2,
                       "fields": ["productId"], "count": true });
    let (mut ids, mut cursor, mut totals) = (Vec::new(), Value::Null, Vec::new());
    loop {
        let mut read = read.clone();
        if !cursor.is_null() {
            read["cursor"] = cursor.clone();
        }
        let (kind, page) = exchange(&alice, "read", "r", read).await;
        assert_eq!(kind, "read", "{page}");
        totals.push(page["total"].clone());
        for item in page["items"].as_array().expect("items") {
            let data = item["data"].as_object().expect("data");
            assert_eq!(data.keys().collect::<Vec<_>>(), ["productId"], "only the fields asked for: {item}");
            ids.push(item["id"].as_str().expect("id").to_owned());
        }
        cursor = page["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    let mut expected = made.clone();
    expected.sort_by(|a, b| a.0.cmp(b.0).then(b.1.total_cmp(&a.1)));
    assert_eq!(ids, expected.iter().map(|(_, _, id)| id.clone()).collect::<Vec<_>>());
    assert_eq!(totals, [json!(5), json!(5), json!(5)], "every page counts the whole list");
    let (_, plain) = exchange(&alice, "read", "r", json!({ "resourceType": "order" })).await;
    assert!(plain.get("total").is_none(), "a count only when asked for: {plain}");

    for (read, pointer) in [
        (json!({ "resourceType": "order", "orderBy": ["productId", "-productId"] }), "/payload/orderBy/1"),
        (json!({ "resourceType": "order", "orderBy": ["productId", "nope"] }), "/payload/orderBy/1"),
        (json!({ "resourceType": "order", "orderBy": ["a", "b", "c", "d", "e"] }), "/payload/orderBy"),
        (json!({ "resourceType": "order", "fields": ["productId", "nope"] }), "/payload/fields/1"),
        (json!({ "resourceType": "order", "id": "ORD-1", "count": true }), "/payload/count"),
    ] {
        let (kind, error) = exchange(&alice, "read", "r", read.clone()).await;
        assert_eq!(kind, "error", "{read}");
        let pointers: Vec<&str> =
            error["details"]["errors"].as_array().into_iter().flatten().filter_map(|e| e["pointer"].as_str()).collect();
        assert!(pointers.contains(&pointer), "{read} -> {error}");
    }

    // The HTTP API: orderBy and fields separated by commas, count=true.
    let bearer = format!("Bearer {}", server.token("alice"));
    let path = "/api/v1/resources/order?orderBy=productId,-totalAmount&fields=totalAmount&count=true&limit=100";
    let page = common::rest::send(server.addr, "GET", path, &[("Authorization", &bearer)], b"").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = page.json();
    let got: Vec<&str> = body["items"].as_array().expect("items").iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(got, ids);
    assert_eq!((body["total"].as_u64(), body["items"][0]["data"]["productId"].is_null()), (Some(5), true));
    let bad =
        common::rest::send(server.addr, "GET", "/api/v1/resources/order?count=yes", &[("Authorization", &bearer)], b"")
            .await;
    assert_eq!((bad.status, bad.json()["details"]["errors"][0]["pointer"].clone()), (400, json!("/count")));
}
