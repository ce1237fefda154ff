//! Prometheus metrics: their names in one place, and the recorder that `GET /metrics` renders.
//!
//! The `metrics` facade is process-wide, so one recorder serves every server in the process (tests start many).

use std::sync::OnceLock;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tidings_protocol::{MessageType, Side};

/// The kind of a metric, for its `# TYPE` and `# HELP` lines.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Declares each metric's name as a constant, documented, and lists them all with their kind and that
/// documentation, which `/metrics` shows as the metric's `# HELP`: one place says what a metric means.
macro_rules! metrics {
    ($($(#[doc = $doc:literal])+ $kind:ident $name:ident = $value:literal;)+) => {
        $($(#[doc = $doc])+ pub const $name: &str = $value;)+

        /// Every metric: its name, its kind and what it means.
        const ALL: &[(&str, Kind, &str)] = &[$(($value, Kind::$kind, concat!($($doc, " "),+))),+];
    };
}

metrics! {
    /// Connections open now (gauge).
    Gauge CONNECTIONS_OPEN = "tidings_connections_open";
    /// Connections accepted since start (counter).
    Counter CONNECTIONS_TOTAL = "tidings_connections_total";
    /// Authenticated sessions now (gauge).
    Gauge SESSIONS_AUTHENTICATED = "tidings_sessions_authenticated";
    /// Messages received, by `type` (`invalid` for those that did not decode) (counter).
    Counter MESSAGES_IN = "tidings_messages_in_total";
    /// Messages sent, by `type` (counter).
    Counter MESSAGES_OUT = "tidings_messages_out_total";
    /// `error` messages sent, by `code` (counter).
    Counter ERRORS = "tidings_errors_total";
    /// Time from receiving a request to writing its reply, by `type` (histogram, seconds).
    Histogram REQUEST_SECONDS = "tidings_request_duration_seconds";
    /// Events released by the hub (counter).
    Counter EVENTS_PUBLISHED = "tidings_events_published_total";
    /// Event pushes handed to mailboxes (counter).
    Counter EVENTS_DELIVERED = "tidings_events_delivered_total";
    /// Events of a type this node passed over because the log no longer had them when it filled a gap, by
    /// `resource_type` (counter); their subscribers were told to subscribe again.
    Counter EVENTS_LOST = "tidings_events_lost_total";
    /// Connections closed as slow consumers (counter).
    Counter SLOW_CONSUMERS = "tidings_slow_consumer_disconnects_total";
    /// Storage operation latency, by `op` (histogram, seconds).
    Histogram STORAGE_SECONDS = "tidings_storage_duration_seconds";
    /// Writes per transaction of the SQLite writer, which commits whatever waits together (histogram); its count is
    /// the number of transactions.
    Histogram STORAGE_BATCH_WRITES = "tidings_storage_batch_writes";
    /// Storage failures, by `op` and `kind` (`unavailable`, `internal`) (counter).
    Counter STORAGE_ERRORS = "tidings_storage_errors_total";
    /// Pushes waiting in all mailboxes, at the last scrape (gauge).
    Gauge QUEUE_DEPTH = "tidings_outbound_queue_depth";
    /// Pushes waiting in the fullest mailbox, at the last scrape (gauge).
    Gauge QUEUE_DEPTH_MAX = "tidings_outbound_queue_depth_max";
    /// Messages the broker could not send to the other nodes (counter); they resync from the event log.
    Counter BROKER_DROPPED = "tidings_broker_dropped_total";
    /// 1 while the broker reaches the other nodes, 0 while it does not, at the last scrape (gauge).
    Gauge BROKER_CONNECTED = "tidings_broker_connected";
    /// Subscriptions held by this node, at the last scrape (gauge).
    Gauge SUBSCRIPTIONS = "tidings_subscriptions";
    /// Webhook requests, by `hook` and `outcome` (`delivered`, `failed`) (counter).
    Counter WEBHOOK_REQUESTS = "tidings_webhook_requests_total";
    /// Events of a hook's type after its cursor, by `hook`, when this node last looked (gauge).
    Gauge WEBHOOK_LAG = "tidings_webhook_lag";
    /// 1 while a hook is paused, by `hook` (gauge).
    Gauge WEBHOOK_PAUSED = "tidings_webhook_paused";
    /// 1, with the server's `version` as a label: which build a node runs (gauge).
    Gauge BUILD_INFO = "tidings_build_info";
    /// Presence members this node knows of, its own and the other nodes', at the last scrape (gauge).
    Gauge PRESENCE_MEMBERS = "tidings_presence_members";
}

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

/// The handles of the metrics that every message touches, one per message type, made once: looking a metric up by
/// its name and labels for each message was 6% of a ping's round trip (`bench/flamegraphs/rpc.svg`).
#[derive(Debug)]
pub struct PerMessage {
    received: [Counter; MessageType::ALL.len()],
    sent: [Counter; MessageType::ALL.len()],
    answered: [Histogram; MessageType::ALL.len()],
    invalid: Counter,
}

impl PerMessage {
    /// [`MESSAGES_IN`] of a type.
    pub fn received(&self, ty: MessageType) -> &Counter {
        &self.received[ty as usize]
    }

    /// [`MESSAGES_IN`] of messages that did not decode (`type="invalid"`).
    pub fn invalid(&self) -> &Counter {
        &self.invalid
    }

    /// [`MESSAGES_OUT`] of a type.
    pub fn sent(&self, ty: MessageType) -> &Counter {
        &self.sent[ty as usize]
    }

    /// [`REQUEST_SECONDS`] of a request's type.
    pub fn answered(&self, ty: MessageType) -> &Histogram {
        &self.answered[ty as usize]
    }
}

/// The per-message handles, made on first use, after the recorder (a handle made before it would record nothing).
pub fn per_message() -> &'static PerMessage {
    static PER_MESSAGE: OnceLock<PerMessage> = OnceLock::new();
    PER_MESSAGE.get_or_init(|| {
        handle();
        // Only the series that can move are registered: `/metrics` shows every registered one, at zero too.
        let client = |ty: MessageType| ty.sent_by(Side::Client);
        // Every message a client sends is a request but these two.
        let request = |ty: MessageType| client(ty) && !matches!(ty, MessageType::Disconnect | MessageType::Pong);
        PerMessage {
            received: MessageType::ALL.map(|ty| {
                if client(ty) {
                    metrics::counter!(MESSAGES_IN, "type" => ty.as_str())
                } else {
                    Counter::noop()
                }
            }),
            sent: MessageType::ALL.map(|ty| {
                if ty.sent_by(Side::Server) {
                    metrics::counter!(MESSAGES_OUT, "type" => ty.as_str())
                } else {
                    Counter::noop()
                }
            }),
            answered: MessageType::ALL.map(|ty| {
                if request(ty) {
                    metrics::histogram!(REQUEST_SECONDS, "type" => ty.as_str())
                } else {
                    Histogram::noop()
                }
            }),
            invalid: metrics::counter!(MESSAGES_IN, "type" => "invalid"),
        }
    })
}

/// Says what each metric means (`# HELP`), and sets the build's.
fn describe() {
    for (name, kind, help) in ALL {
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, help),
            Kind::Gauge => metrics::describe_gauge!(*name, help),
            Kind::Histogram => metrics::describe_histogram!(*name, help),
        }
    }
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
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
            Ok(handle) => {
                describe();
                handle
            }
            // Another recorder is already global (an embedding application's): render ours, unrecorded.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

#[cfg(test)]
mod tests {
    use tidings_protocol::MessageType;

    /// [`super::PerMessage`] finds a type's handles at its position in `MessageType::ALL`.
    #[test]
    fn message_types_are_numbered_in_their_list_order() {
        for (position, ty) in MessageType::ALL.into_iter().enumerate() {
            assert_eq!(ty as usize, position, "{}", ty.as_str());
        }
    }

    /// docs/operations.md lists every metric, so that an operator who reads it knows all there is to watch.
    #[test]
    fn the_operations_guide_lists_every_metric() {
        let guide = include_str!("../../../docs/operations.md");
        let missing: Vec<&str> =
            super::ALL.iter().map(|(name, _, _)| *name).filter(|name| !guide.contains(name)).collect();
        assert!(missing.is_empty(), "docs/operations.md does not list {missing:?}");
    }
}
