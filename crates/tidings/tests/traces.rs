//! Traces, as an operator sees them in their collector: `tidings serve` with `traces.otlp_endpoint` posts its spans
//! over OTLP/HTTP (JSON) to a collector on loopback; a create over the WebSocket is one trace, its request's span
//! the parent of the storage write's, and an HTTP request's span is named by its route and continues the trace its
//! `traceparent` header names.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Served;
use serde_json::{json, Value};
use tidings_protocol::{ClientMessage, Create, ResourceType, ServerMessage};
use tokio::sync::watch;

/// A collector: takes every POST to `/v1/traces` and keeps its spans, with their service's name.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<(String, Value)>>>,
    /// How many have arrived, to wait on.
    count: watch::Receiver<usize>,
}

impl Collector {
    fn start() -> Collector {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&spans);
        let (tell, count) = watch::channel(0usize);
        let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        let url = common::endpoint::listen(answer, move |body| {
            let request: Value = serde_json::from_slice(body).unwrap_or_default();
            for resource in request["resourceSpans"].as_array().into_iter().flatten() {
                let service = resource["resource"]["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["key"] == "service.name")
                    .and_then(|a| a["value"]["stringValue"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        let mut kept = kept.lock().expect("spans");
                        kept.push((service.clone(), span.clone()));
                        tell.send_replace(kept.len());
                    }
                }
            }
        });
        Collector { url, spans, count }
    }

    /// Waits until a span named `name` has come (looking again on every arrival), and returns it with its
    /// service's name.
    async fn until(&self, name: &str) -> (String, Value) {
        let find = || self.spans.lock().expect("spans").iter().find(|(_, s)| s["name"] == name).cloned();
        let mut count = self.count.clone();
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(found) = find() {
                    return Some(found);
                }
                if count.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        found.ok().flatten().unwrap_or_else(|| panic!("no span {name:?} reached the collector"))
    }
}

#[tokio::test]
async fn a_request_is_one_trace_in_the_collector() {
    let collector = Collector::start();
    let settings = [
        ("TIDINGS_TRACES__OTLP_ENDPOINT", collector.url.as_str()),
        ("TIDINGS_NODE", "node-t"),
        // Batches go out every 50 ms here, rather than every five seconds.
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    let served = Served::start_in(tempfile::tempdir().expect("temp dir"), &settings);
    let (client, _pushes, _) = tidings_client::Client::connect(&served.url).await.expect("connect");
    client.auth(&served.token("alice")).await.expect("auth");
    let create = Create {
        resource_type: ResourceType::new("order").expect("type"),
        data: json!({ "productId": "P1", "quantity": 1, "totalAmount": 3 }).as_object().cloned().expect("object"),
    };
    assert!(matches!(client.request(ClientMessage::Create(create)).await, Ok(ServerMessage::Create(_))));
    let http = served.url.replacen("ws://", "http://", 1).replace("/ws", "/api/v1/resources/order/ORD-NONE");
    // The back end that makes this request is in a trace of its own, which the request's span joins.
    let _ = ureq::get(&http)
        .header("Authorization", &format!("Bearer {}", served.token("alice")))
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .call();

    let (service, request) = collector.until("ws create").await;
    assert_eq!(service, "tidings");
    let (_, write) = collector.until("storage create").await;
    assert_eq!(write["traceId"], request["traceId"], "the write is in the request's trace");
    assert_eq!(write["parentSpanId"], request["spanId"], "the request's span is the write's parent");
    let (_, read) = collector.until("GET /api/v1/resources/{type}/{id}").await;
    let status = read["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["key"] == "http.response.status_code")
        .map(|a| a["value"].clone());
    assert!(status.is_some_and(|v| v.to_string().contains("404")), "the answer's status is on the span: {read}");
    assert_eq!(read["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736", "the request continues its caller's trace");
    assert_eq!(read["parentSpanId"], "00f067aa0ba902b7", "the caller's span is the request's parent");
}
