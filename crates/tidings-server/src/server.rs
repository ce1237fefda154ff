//! The listener: binds, serves HTTP and WebSockets, and shuts down gracefully within a bound.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::auth::Authenticator;
use crate::broker::Received;
use crate::config::Config;
use crate::directory::Directory;
use crate::http;
use crate::hub::Hub;
use crate::notifications::Notifier;
use crate::paced::{Pace, Paced};
use crate::presence::Presence;
use crate::relay::Relay;
use crate::resources::{ResourceTypes, Resources};
use crate::shared::{Connections, Shared};

/// A bound Tidings server, ready to run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<RustlsConfig>,
    /// What the other nodes send, until `run` relays it to the hub.
    inbound: mpsc::Receiver<Received>,
}

/// The Origins dev mode lets connect: pages of this machine, on any port.
const DEV_ORIGINS: [&str; 3] = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

impl Server {
    /// Prepares the data dir and the authenticator, and binds `config.listen`.
    pub async fn bind(mut config: Config) -> anyhow::Result<Server> {
        config.check()?;
        if config.dev {
            // A front end's dev server (Vite, Next, ...) serves its pages from another port of this machine.
            config.allowed_origins.extend(DEV_ORIGINS.iter().map(|origin| (*origin).to_owned()));
        }
        let proxies = crate::peer::TrustedProxies::parse(&config.trusted_proxies)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let address = listener.local_addr().map_or_else(|_| config.listen.to_string(), |addr| addr.to_string());
        let node = config.node.clone().unwrap_or(address);
        // Installed before anything is counted.
        crate::metrics::install(&node);
        let auth = Authenticator::from_config(&config.auth, &config.data_dir)?;
        // Published keys are fetched before the first sign-in needs them; a provider that cannot be reached now
        // is tried again when a token asks for its keys.
        auth.prefetch().await;
        // Compiled here, once: the rest of the server shares these.
        let types = Arc::new(ResourceTypes::compile(&config.resource_types)?);
        let webhooks = Arc::new(crate::webhooks::Webhooks::compile(&config.webhooks, &types)?);
        let storage = crate::storage::open(&config).await?;
        for name in types.names() {
            let Some(def) = types.get(name) else { continue };
            storage
                .ensure_indexes(name, &def.config.indexes)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the indexes of {name}: {e}"))?;
        }
        let hub = Hub::new();
        for name in types.names() {
            if types.get(name).is_some_and(|def| def.config.previous_data) {
                hub.keep_previous_data(name);
            }
        }
        let (broker, inbound) = crate::broker::open(&config.broker, &node)?;
        let presence = Presence::new(&node, Arc::clone(&broker));
        let relay = Relay::new(Arc::clone(&hub), Arc::clone(&presence), broker, Arc::clone(&storage));
        relay.start_streams(types.names()).await.map_err(|e| anyhow::anyhow!("cannot read the event log: {e}"))?;
        let notifier = Notifier::new(Arc::clone(&storage), Arc::clone(&relay));
        let resources = Resources::new(types, Arc::clone(&storage), Arc::clone(&relay), Arc::clone(&notifier));
        let shared = Arc::new(Shared {
            refused_origins: Default::default(),
            clock: governor::clock::DefaultClock::default(),
            proxies,
            config,
            auth,
            resources,
            storage,
            hub,
            presence,
            relay,
            notifier,
            webhooks,
            connections: Arc::new(Connections::default()),
            directory: Arc::new(Directory::new(node)),
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
        });
        let tls = match &shared.config.tls {
            Some(tls) => Some(RustlsConfig::from_config(Arc::new(crate::tls::server_config(tls)?))),
            None => None,
        };
        Ok(Server { listener, shared, tls, inbound })
    }

    /// Whether the server terminates TLS itself (`wss://`).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The address the server listens on (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.shared.config.listen)
    }

    /// What the server's sessions share: to run a [`crate::session::Session`] without a socket, as the fuzz
    /// targets do.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The authenticator, to mint tokens (tests, `tidings token`) and to tell whether the key was generated.
    pub fn authenticator(&self) -> &Authenticator {
        &self.shared.auth
    }

    /// Serves until `shutdown` resolves, then stops accepting, sends every session `disconnect` 1001, and
    /// returns when they have closed or the configured bound has passed.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Server { listener, shared, tls, inbound } = self;
        let app = http::router(Arc::clone(&shared));
        let stop = shared.shutdown.clone();
        let serving = match (tls, &shared.config.tls) {
            (Some(rustls), Some(files)) => {
                crate::tls::reload_on_hangup(files.clone(), rustls.clone());
                let handle = axum_server::Handle::new();
                let stopping = handle.clone();
                tokio::spawn(async move {
                    stop.cancelled().await;
                    stopping.graceful_shutdown(None);
                });
                let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls)
                    .acceptor(crate::paced::Pace::of(&shared.config));
                let mut server = axum_server::from_tcp(listener.into_std()?)?.acceptor(acceptor).handle(handle);
                server
                    .http_builder()
                    .http1()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT);
                tokio::spawn(async move { server.serve(app.into_make_service_with_connect_info::<SocketAddr>()).await })
            }
            _ => tokio::spawn(serve_plain(listener, app, crate::paced::Pace::of(&shared.config), stop)),
        };
        let pruner = tokio::spawn(prune(Arc::clone(&shared)));
        let writing = CancellationToken::new();
        let roster = tokio::spawn(Arc::clone(&shared.notifier).keep_roster(writing.clone()));
        let upkeep = tokio::spawn(crate::metrics::upkeep());
        let types = shared.resources.types().names().map(str::to_owned).collect();
        let sweep = Duration::from_millis(shared.config.broker.sweep_interval_ms);
        let relay = tokio::spawn(Arc::clone(&shared.relay).run(inbound, types, sweep));
        let delivering = CancellationToken::new();
        let deliverers = shared.webhooks.start(&shared.storage, shared.directory.node(), &delivering);
        shutdown.await;
        delivering.cancel();
        // A deliverer gives its lease up as it stops; one stuck in a request is not waited for long.
        for deliverer in deliverers {
            let _ = tokio::time::timeout(Duration::from_secs(1), deliverer).await;
        }
        pruner.abort();
        upkeep.abort();
        relay.abort();
        info!("shutting down: closing {} connections", shared.connections.total());
        shared.shutdown.cancel();
        shared.sessions.close();
        let bound = Duration::from_millis(shared.config.shutdown_timeout_ms);
        let drained = tokio::time::timeout(bound, async {
            shared.sessions.wait().await;
            serving.await
        })
        .await;
        // The users who signed in since the last write are written down before the server goes.
        writing.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), roster).await;
        match drained {
            Ok(Ok(result)) => result.map_err(anyhow::Error::from),
            Ok(Err(join)) => Err(anyhow::anyhow!("the HTTP server failed: {join}")),
            Err(_) => {
                warn!("connections still open after {} ms; exiting anyway", bound.as_millis());
                Ok(())
            }
        }
    }
}

/// How long a client may take to send a request's headers. Without a bound, a client that sends them one byte
/// at a time (slowloris) holds a socket and its memory for ever, before any limit of ours applies.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves plain HTTP/1.1 (and WebSocket upgrades) until `stop`, then lets requests in flight finish. A loop of
/// our own rather than `axum::serve`, which sets no timer and so no header read timeout.
///
/// Every socket is [`Paced`]: a client that does not read what it asked for is cut off rather than holding the
/// response, or its WebSocket's replies, in memory.
async fn serve_plain(
    listener: TcpListener,
    app: axum::Router,
    pace: Pace,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, or a connection reset before it was accepted: keep accepting.
                Err(error) => {
                    warn!("accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(hyper_util::rt::TokioIo::new(Paced::new(stream, pace)), with_peer(&app, peer))
            .with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    // Finish the request in flight, if any, and take no more on this connection.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!("connection ended: {error}");
            }
        });
    }
    // An upgraded connection is a session by now, which the shutdown closes on its own; this waits for the plain
    // HTTP requests still in flight.
    connections.close();
    connections.wait().await;
    Ok(())
}

/// The app for one connection from `peer`: each request carries the client's address as `ConnectInfo`, as axum's
/// own server would give it, for the handlers that ask who is calling (the dev sign-in answers only loopback).
fn with_peer(
    app: &axum::Router,
    peer: SocketAddr,
) -> hyper_util::service::TowerToHyperService<
    tower::util::MapRequest<axum::Router, impl Fn(Incoming) -> Incoming + Clone>,
> {
    let tag = move |mut request: Incoming| {
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        request
    };
    hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(app.clone(), tag))
}

/// A request as hyper reads it off a connection.
type Incoming = hyper::Request<hyper::body::Incoming>;

/// Prunes the event log and delivered notifications, and forgets users who stopped signing in, now and then,
/// within the configured retentions.
async fn prune(shared: Arc<Shared>) {
    let events = &shared.config.events;
    let mut every = tokio::time::interval(Duration::from_millis(events.prune_interval_ms));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let before = tidings_protocol::now_ms().saturating_sub(events.retain_ms);
        match shared.storage.prune_events(events.retain_count, before).await {
            Ok(0) => {}
            Ok(dropped) => info!("dropped {dropped} events past their retention"),
            Err(error) => warn!("could not prune the event log: {error}"),
        }
        let before = tidings_protocol::now_ms().saturating_sub(shared.config.notifications.retain_ms);
        match shared.storage.prune_notifications(before).await {
            Ok(0) => {}
            Ok(dropped) => info!("dropped {dropped} delivered notifications past their retention"),
            Err(error) => warn!("could not prune delivered notifications: {error}"),
        }
        let before = tidings_protocol::now_ms().saturating_sub(shared.config.notifications.forget_users_after_ms);
        match shared.storage.forget_users(before).await {
            Ok(0) => {}
            Ok(forgotten) => info!("forgot {forgotten} users who have not signed in for a while"),
            Err(error) => warn!("could not forget users who stopped signing in: {error}"),
        }
    }
}
