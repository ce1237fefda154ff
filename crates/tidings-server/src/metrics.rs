//! Prometheus metrics: their names in one place, and the recorder that `GET /metrics` renders.
//!
//! The `metrics` facade is process-wide, so one recorder serves every server in the process (tests start many).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Connections open now (gauge).
pub const CONNECTIONS_OPEN: &str = "tidings_connections_open";
/// Connections accepted since start (counter).
pub const CONNECTIONS_TOTAL: &str = "tidings_connections_total";
/// Authenticated sessions now (gauge).
pub const SESSIONS_AUTHENTICATED: &str = "tidings_sessions_authenticated";
/// Messages received, by `type` (`invalid` for those that did not decode) (counter).
pub const MESSAGES_IN: &str = "tidings_messages_in_total";
/// Messages sent, by `type` (counter).
pub const MESSAGES_OUT: &str = "tidings_messages_out_total";
/// `error` messages sent, by `code` (counter).
pub const ERRORS: &str = "tidings_errors_total";
/// Time from receiving a request to writing its reply, by `type` (histogram, seconds).
pub const REQUEST_SECONDS: &str = "tidings_request_duration_seconds";
/// Events released by the hub (counter).
pub const EVENTS_PUBLISHED: &str = "tidings_events_published_total";
/// Event pushes handed to mailboxes (counter).
pub const EVENTS_DELIVERED: &str = "tidings_events_delivered_total";
/// Events of a type this node passed over because the log no longer had them when it filled a gap, by
/// `resource_type` (counter); their subscribers were told to subscribe again.
pub const EVENTS_LOST: &str = "tidings_events_lost_total";
/// Connections closed as slow consumers (counter).
pub const SLOW_CONSUMERS: &str = "tidings_slow_consumer_disconnects_total";

/// Storage operation latency, by `op` (histogram, seconds).
pub const STORAGE_SECONDS: &str = "tidings_storage_duration_seconds";
/// Storage failures, by `op` and `kind` (`unavailable`, `internal`) (counter).
pub const STORAGE_ERRORS: &str = "tidings_storage_errors_total";
/// Pushes waiting in all mailboxes, at the last scrape (gauge).
pub const QUEUE_DEPTH: &str = "tidings_outbound_queue_depth";
/// Pushes waiting in the fullest mailbox, at the last scrape (gauge).
pub const QUEUE_DEPTH_MAX: &str = "tidings_outbound_queue_depth_max";

/// Messages the broker could not send to the other nodes (counter); they resync from the event log.
pub const BROKER_DROPPED: &str = "tidings_broker_dropped_total";
/// 1 while the broker reaches the other nodes, 0 while it does not, at the last scrape (gauge).
pub const BROKER_CONNECTED: &str = "tidings_broker_connected";
/// Subscriptions held by this node, at the last scrape (gauge).
pub const SUBSCRIPTIONS: &str = "tidings_subscriptions";

/// Webhook requests, by `hook` and `outcome` (`delivered`, `failed`) (counter).
pub const WEBHOOK_REQUESTS: &str = "tidings_webhook_requests_total";
/// Events of a hook's type after its cursor, by `hook`, when this node last looked (gauge).
pub const WEBHOOK_LAG: &str = "tidings_webhook_lag";
/// 1 while a hook is paused, by `hook` (gauge).
pub const WEBHOOK_PAUSED: &str = "tidings_webhook_paused";

static NODE: OnceLock<String> = OnceLock::new();

/// Installs the recorder with the `node` label on every metric. The first call in a process decides the label
/// (tests run several nodes in one process; they share one recorder).
pub fn install(node: &str) {
    let _ = NODE.set(node.to_owned());
    handle();
}

/// How often recorded histogram samples are folded into their buckets. The recorder keeps every sample until then,
/// or until `/metrics` is rendered, so a server that nobody scrapes would otherwise grow by every request it
/// serves (the soak found this: about 14 MB a minute under churn).
pub const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds histogram samples into their buckets every [`UPKEEP_INTERVAL`], for as long as it runs.
pub async fn upkeep() {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        tick.tick().await;
        handle().run_upkeep();
    }
}

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        if let Some(node) = NODE.get() {
            builder = builder.add_global_label("node", node);
        }
        let buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
        let builder = builder.set_buckets(&buckets).unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is already global (an embedding application's): render ours, unrecorded.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}
