//! The server's settings: defaults, a TOML file, then `TIDINGS_*` environment variables (docs/configuration.md).
//!
//! This module is the bottom of the server crate: it depends on nothing else in it, so every other module may read
//! settings without a loop. Settings are plain data here; what needs compiling (resource types' schemas and
//! rules) is compiled once, by `Server::bind`, from these values.

mod duration;
mod environment;
mod resource_types;
mod webhooks;

pub use resource_types::{default_types, FieldRulesConfig, PermissionsConfig, ResourceTypeConfig};
pub use webhooks::{BeforeHookConfig, WebhookConfig};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// How stale a user's last sign-in may be before a sign-in writes it again (a day): precise enough for a
/// retention counted in weeks, and it keeps a write off nearly every sign-in. A setting's bound, hence here.
pub const LAST_SEEN_STEP_MS: u64 = 24 * 3600 * 1000;

/// Every setting of `tidings serve`. Field names are the TOML keys; nested tables map to `TIDINGS_TABLE__KEY`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Where the server keeps its files (the generated signing key, later the SQLite database).
    pub data_dir: PathBuf,
    /// Origins allowed to open a WebSocket from a browser, such as `https://app.example.com`; `*` allows any.
    /// Empty: only pages served by this server itself (the Origin's host equals the Host header).
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` header names the client: addresses or networks
    /// such as `10.0.0.0/8`. Loopback by default, for a proxy on the same machine.
    pub trusted_proxies: Vec<String>,
    /// Token verification.
    pub auth: AuthConfig,
    /// Heartbeat timing.
    pub heartbeat: HeartbeatConfig,
    /// Limits per message, per connection and per server.
    pub limits: LimitsConfig,
    /// How long a graceful shutdown may take before the process exits anyway, in milliseconds.
    #[serde(deserialize_with = "duration::millis")]
    pub shutdown_timeout_ms: u64,
    /// Logging.
    pub log: LogConfig,
    /// Where resources and events are stored.
    pub storage: StorageConfig,
    /// The resource types served; the design notes' `order` when the config declares none.
    pub resource_types: Vec<ResourceTypeConfig>,
    /// Webhooks: each delivers the events of a resource type, in order, to an HTTP endpoint (docs/webhooks.md).
    pub webhooks: Vec<WebhookConfig>,
    /// How long the event log keeps events for resuming subscriptions.
    pub events: EventsConfig,
    /// How long delivered notifications are kept.
    pub notifications: NotificationsConfig,
    /// The bounds of presence (docs/protocol.md, 8.7).
    pub presence: PresenceConfig,
    /// Traces to an OpenTelemetry collector (docs/operations.md, "Traces").
    pub traces: TracesConfig,
    /// TLS termination: serve `wss://` with this certificate and key; absent, plain `ws://` (behind a proxy).
    pub tls: Option<TlsConfig>,
    /// The `TIDINGS_*` variables of the environment that name no setting: left out, for the server to warn about.
    #[serde(skip)]
    pub ignored_environment: Vec<String>,
    /// Keys for the server API (`POST /api/v1/notifications`, sent as `X-Api-Key`); none: that API is off.
    pub api_keys: Vec<String>,
    /// A file of more keys for the server API, one per line (blank lines and `#` comments ignored): a container
    /// secret. Its keys join `api_keys`.
    pub api_keys_file: Option<PathBuf>,
    /// The role whose users may use the admin API and console with their own token, as an API key may: an
    /// operator signs in to `/admin` as a user. Named apart from the roles an app gives its own users (an app's
    /// `admin` must not make its holders operators of the server). Empty: only API keys.
    pub admin_role: String,
    /// This node's name in a cluster, as logs, metrics (`node` label), `/status` and the admin API show it.
    /// Default: the address it listens on.
    pub node: Option<String>,
    /// How nodes of a cluster reach each other.
    pub broker: BrokerConfig,
    /// Whether `/` serves the orders board, the demo page built on the TypeScript SDK (web/).
    pub web_page: bool,
    /// Development mode (`tidings serve --dev`), on a loopback address only: the dev sign-in is offered with a
    /// configured secret too, and pages of `http://localhost` and `http://127.0.0.1` on any port may connect (a
    /// front end's dev server, such as Vite's).
    pub dev: bool,
}

/// Where `tidings serve` sends traces: a collector that takes OTLP over HTTP, and the share of requests traced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// The collector's base URL, such as `http://127.0.0.1:4318` (spans are posted to `/v1/traces`, as JSON);
    /// none: no traces.
    pub otlp_endpoint: Option<String>,
    /// The share of requests traced, from 0 to 1.
    pub sample_ratio: f64,
    /// The spans' `service.name`.
    pub service_name: String,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig { otlp_endpoint: None, sample_ratio: 1.0, service_name: "tidings".to_owned() }
    }
}

/// The bounds of presence: members per topic, the size of a member's state, and the topics one connection is
/// present at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// Members one topic may have, over every node; one more join gets LIMIT_EXCEEDED.
    pub max_members: u32,
    /// The largest `state` of a member, in bytes of JSON.
    pub max_state_bytes: u32,
    /// Topics one connection may be present at at once.
    pub max_joins: u32,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig { max_members: 1000, max_state_bytes: 1024, max_joins: 16 }
    }
}

/// Retention of the event log: events beyond either bound are dropped; a `since` before them is `recovered: false`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// The newest events kept per resource type.
    pub retain_count: u64,
    /// The age after which an event is dropped, in milliseconds.
    #[serde(deserialize_with = "duration::millis")]
    pub retain_ms: u64,
    /// How often the log is pruned, in milliseconds.
    #[serde(deserialize_with = "duration::millis")]
    pub prune_interval_ms: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig { retain_count: 1_000_000, retain_ms: 7 * 24 * 3600 * 1000, prune_interval_ms: 60_000 }
    }
}

/// Retention of notifications: a delivered one older than this is dropped (pruned with the event log, on
/// `events.prune_interval_ms`); an undelivered one is kept until it is delivered. A `notifications` subscription
/// whose `since` is before what was dropped is `recovered: false`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// The age after which a delivered notification is dropped, in milliseconds.
    #[serde(deserialize_with = "duration::millis")]
    pub retain_ms: u64,
    /// How long after their last sign-in a user still receives notifications sent to everyone, in milliseconds;
    /// after it they are forgotten until they sign in again (their own notifications are kept).
    #[serde(deserialize_with = "duration::millis")]
    pub forget_users_after_ms: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig { retain_ms: 30 * 24 * 3600 * 1000, forget_users_after_ms: 90 * 24 * 3600 * 1000 }
    }
}

/// TLS settings: PEM files, reloaded on SIGHUP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// The broker between the nodes of a cluster (docs/deploy.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// `redis://HOST:PORT` to join the nodes that use it; absent: this node alone (in-process).
    pub url: Option<String>,
    /// The Redis pub/sub channel; clusters that share a Redis need different channels.
    pub channel: String,
    /// How often a node compares what its hub released with the event log, to catch an event the broker lost
    /// with nothing after it, in milliseconds.
    #[serde(deserialize_with = "duration::millis")]
    pub sweep_interval_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig { url: None, channel: "tidings".to_owned(), sweep_interval_ms: 1000 }
    }
}

/// Storage settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `postgres://...` for PostgreSQL; absent for SQLite in `data_dir/tidings.db`.
    pub url: Option<String>,
    /// How long a create's requestId is remembered for safe retries, in milliseconds.
    #[serde(deserialize_with = "duration::millis")]
    pub idempotency_window_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { url: None, idempotency_window_ms: 24 * 3600 * 1000 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./tidings-data"),
            allowed_origins: Vec::new(),
            trusted_proxies: vec!["127.0.0.0/8".to_owned(), "::1".to_owned()],
            auth: AuthConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            limits: LimitsConfig::default(),
            shutdown_timeout_ms: 10_000,
            log: LogConfig::default(),
            storage: StorageConfig::default(),
            resource_types: default_types(),
            webhooks: Vec::new(),
            events: EventsConfig::default(),
            notifications: NotificationsConfig::default(),
            presence: PresenceConfig::default(),
            traces: TracesConfig::default(),
            api_keys: Vec::new(),
            api_keys_file: None,
            admin_role: "tidings-admin".to_owned(),
            web_page: true,
            dev: false,
            node: None,
            broker: BrokerConfig::default(),
            tls: None,
            ignored_environment: Vec::new(),
        }
    }
}

/// How tokens are verified. With neither `secret` nor `public_key_file`, the server generates an HS256 secret
/// in its data dir, says so, and enables the dev sign-in endpoint on loopback addresses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The HS256 shared secret.
    pub secret: Option<String>,
    /// A file holding the HS256 shared secret (a container secret), instead of `secret`.
    pub secret_file: Option<PathBuf>,
    /// A PEM file with the RS256 or ES256 public key that verifies tokens.
    pub public_key_file: Option<PathBuf>,
    /// The algorithm of `public_key_file`: `RS256` or `ES256`.
    pub algorithm: Option<String>,
    /// The URL where an identity provider publishes its keys (a JWKS), instead of a fixed key.
    pub jwks_url: Option<String>,
    /// When set, tokens must name this issuer (`iss`).
    pub issuer: Option<String>,
    /// When set, tokens must name this audience (`aud`).
    pub audience: Option<String>,
    /// The claim that holds the user's roles: a name, or names joined by `.` (`realm_access.roles`); `roles` when
    /// absent.
    pub roles_claim: Option<String>,
    /// More identity providers, tried after the one above for the tokens whose issuer they take.
    pub providers: Vec<ProviderConfig>,
    /// Time from socket open to `auth_success`, in milliseconds; then the server closes with 4500.
    #[serde(deserialize_with = "duration::millis")]
    pub auth_timeout_ms: u64,
    /// Time after a session's token expires in which a fresh `auth` restores it, in milliseconds; then 4501.
    #[serde(deserialize_with = "duration::millis")]
    pub token_grace_ms: u64,
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub leeway_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret: None,
            secret_file: None,
            public_key_file: None,
            algorithm: None,
            jwks_url: None,
            issuer: None,
            audience: None,
            roles_claim: None,
            providers: Vec::new(),
            auth_timeout_ms: 10_000,
            token_grace_ms: 30_000,
            leeway_seconds: 0,
        }
    }
}

/// One identity provider whose tokens the server accepts: exactly one key (`secret`, `secret_file`,
/// `public_key_file` with `algorithm`, or `jwks_url`), and what its tokens must name. [`AuthConfig`] spells the
/// same keys out at its top level, for the first provider: `auth.secret` keeps its name, and serde cannot flatten
/// a struct into one that refuses unknown keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// An HS256 shared secret.
    pub secret: Option<String>,
    /// A file holding an HS256 shared secret.
    pub secret_file: Option<PathBuf>,
    /// A PEM file with an RS256 or ES256 public key.
    pub public_key_file: Option<PathBuf>,
    /// The algorithm of `public_key_file`.
    pub algorithm: Option<String>,
    /// The URL of the provider's published keys (a JWKS).
    pub jwks_url: Option<String>,
    /// The issuer (`iss`) its tokens name; tokens that name another are not offered to it.
    pub issuer: Option<String>,
    /// The audience (`aud`) its tokens must name.
    pub audience: Option<String>,
    /// The claim that holds the roles, as for `auth.roles_claim`.
    pub roles_claim: Option<String>,
}

impl ProviderConfig {
    /// Whether it names a key.
    pub fn has_keys(&self) -> bool {
        self.secret.is_some() || self.secret_file.is_some() || self.public_key_file.is_some() || self.jwks_url.is_some()
    }
}

/// Heartbeat timing, advertised in the `connect` reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// How often the server sends `ping`, in milliseconds.
    #[serde(deserialize_with = "duration::millis")]
    pub ping_interval_ms: u64,
    /// Silence from a client after which the server closes with 4000, in milliseconds.
    #[serde(deserialize_with = "duration::millis")]
    pub idle_timeout_ms: u64,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig { ping_interval_ms: 25_000, idle_timeout_ms: 60_000 }
    }
}

/// Limits; the per-connection ones are advertised in the `connect` reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// The largest message answered normally; larger ones get PAYLOAD_TOO_LARGE.
    pub max_message_bytes: usize,
    /// The largest message read at all; a larger frame closes the connection with 1009.
    pub hard_message_bytes: usize,
    /// Messages per second per connection (the token bucket's rate).
    pub rate_per_second: u32,
    /// The token bucket's size.
    pub rate_burst: u32,
    /// Messages refused in a row for the rate limit after which the connection is closed with 1008.
    pub rate_abuse_after: u32,
    /// Subscriptions per connection.
    pub max_subscriptions: u32,
    /// Pushes waiting for one connection; a connection that lets more pile up is closed with 4001.
    pub outbound_queue: usize,
    /// How long a write may wait for a client that does not read, in milliseconds; then the connection is dropped.
    #[serde(deserialize_with = "duration::millis")]
    pub write_timeout_ms: u64,
    /// Bytes per second a client must read while the server waits on it (HTTP and WebSocket alike); a reader
    /// slower than this is dropped a little after `write_timeout_ms`, so it cannot hold a reply in memory.
    pub min_write_rate: u64,
    /// Connections the server holds at once; one more is closed with 4002.
    pub max_connections: usize,
    /// Authenticated connections per user; one more is closed with 4503.
    pub max_connections_per_user: usize,
    /// WebSockets one client address may hold before they authenticate; one more is refused with HTTP 429.
    /// Clients on loopback are not counted.
    pub max_unauthenticated_per_address: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 64 * 1024,
            hard_message_bytes: 1024 * 1024,
            rate_per_second: 50,
            rate_burst: 100,
            rate_abuse_after: 100,
            max_subscriptions: 100,
            outbound_queue: 4096,
            write_timeout_ms: 10_000,
            min_write_rate: 16 * 1024,
            max_connections: 100_000,
            max_connections_per_user: 100,
            max_unauthenticated_per_address: 32,
        }
    }
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter such as `info` or `tidings_server=debug`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: "text".to_owned(), level: "info".to_owned() }
    }
}

impl Config {
    /// Loads defaults, then `file` if given, then the `TIDINGS_*` environment, and checks the result.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(file.exists(), "config file {} does not exist", file.display());
            figment = figment.merge(Toml::file(file));
        }
        let defaults = serde_json::to_value(Config::default())?;
        let (env, ignored) = environment::settings(&defaults);
        let mut config: Config = figment.merge(env).extract()?;
        config.ignored_environment = ignored;
        let base = file.and_then(Path::parent).unwrap_or(Path::new("."));
        for resource_type in &mut config.resource_types {
            resource_type.read_schema_file(base)?;
        }
        for hook in &mut config.webhooks {
            hook.read_secret_file(base)?;
        }
        if let Some(file) = &config.api_keys_file {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("api_keys_file: cannot read {}: {e}", path.display()))?;
            let keys = text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#'));
            config.api_keys.extend(keys.map(str::to_owned));
        }
        config.check()?;
        Ok(config)
    }

    /// Refuses settings that cannot work together.
    pub fn check(&self) -> anyhow::Result<()> {
        for (n, hook) in self.webhooks.iter().enumerate() {
            hook.check()?;
            anyhow::ensure!(
                !self.webhooks[..n].iter().any(|earlier| earlier.name == hook.name),
                "webhook '{}' is declared twice",
                hook.name
            );
        }
        anyhow::ensure!(
            !self.dev || self.listen.ip().is_loopback(),
            "dev mode signs anyone in: it listens on a loopback address only, not {}",
            self.listen
        );
        let limits = &self.limits;
        anyhow::ensure!(limits.max_message_bytes > 0, "limits.max_message_bytes must be positive");
        anyhow::ensure!(
            limits.hard_message_bytes >= limits.max_message_bytes,
            "limits.hard_message_bytes must be at least limits.max_message_bytes"
        );
        // A sign-in moves a user's last sign-in forward at most once a day: a shorter memory would forget users
        // who sign in every day.
        let step = LAST_SEEN_STEP_MS;
        anyhow::ensure!(
            self.notifications.forget_users_after_ms >= 2 * step,
            "notifications.forget_users_after_ms must be at least two days ({} ms)",
            2 * step
        );
        anyhow::ensure!(limits.min_write_rate > 0, "limits.min_write_rate must be positive");
        anyhow::ensure!(limits.rate_per_second > 0 && limits.rate_burst > 0, "limits.rate_* must be positive");
        anyhow::ensure!(self.heartbeat.ping_interval_ms > 0, "heartbeat.ping_interval_ms must be positive");
        anyhow::ensure!(
            self.heartbeat.idle_timeout_ms > self.heartbeat.ping_interval_ms,
            "heartbeat.idle_timeout_ms must be longer than heartbeat.ping_interval_ms"
        );
        anyhow::ensure!(
            !(self.auth.secret.is_some() && self.auth.public_key_file.is_some()),
            "set either auth.secret or auth.public_key_file, not both"
        );
        anyhow::ensure!(self.events.prune_interval_ms > 0, "events.prune_interval_ms must be positive");
        anyhow::ensure!((0.0..=1.0).contains(&self.traces.sample_ratio), "traces.sample_ratio must be between 0 and 1");
        let presence = &self.presence;
        anyhow::ensure!(
            presence.max_members > 0 && presence.max_state_bytes > 0 && presence.max_joins > 0,
            "presence.max_members, max_state_bytes and max_joins must be positive"
        );
        // A presence subscription's reply carries every member: its size is bounded by these two.
        anyhow::ensure!(
            u64::from(presence.max_members) * u64::from(presence.max_state_bytes) <= 16 * 1024 * 1024,
            "presence.max_members × presence.max_state_bytes must be at most 16 MiB (the most a topic's members may weigh)"
        );
        anyhow::ensure!(
            self.api_keys.iter().all(|k| k.len() >= 16),
            "every api_keys entry must be at least 16 characters"
        );
        if let Some(url) = &self.storage.url {
            anyhow::ensure!(
                url.starts_with("postgres://") || url.starts_with("postgresql://"),
                "storage.url must be a postgres:// URL (leave it out for SQLite)"
            );
        }
        if let Some(url) = &self.broker.url {
            anyhow::ensure!(
                url.starts_with("redis://"),
                "broker.url must be a redis:// URL (leave it out for a single node)"
            );
            anyhow::ensure!(
                self.storage.url.is_some(),
                "broker.url joins nodes that share their storage: set storage.url to a PostgreSQL database too"
            );
        }
        anyhow::ensure!(self.broker.sweep_interval_ms > 0, "broker.sweep_interval_ms must be positive");
        anyhow::ensure!(
            self.node.as_deref().is_none_or(|n| !n.is_empty() && n.len() <= 64),
            "node must be 1 to 64 characters"
        );
        anyhow::ensure!(
            ["text", "json"].contains(&self.log.format.as_str()),
            "log.format must be text or json, not {}",
            self.log.format
        );
        Ok(())
    }

    /// The ping interval.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat.ping_interval_ms)
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat.idle_timeout_ms)
    }

    /// The auth timeout.
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth.auth_timeout_ms)
    }

    /// The grace period after a token expires.
    pub fn token_grace(&self) -> Duration {
        Duration::from_millis(self.auth.token_grace_ms)
    }
}

#[cfg(test)]
mod tests;
