//! The listener: binds, serves HTTP and WebSockets, and shuts down gracefully within a bound.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::http;
use crate::resources::{ResourceTypes, Resources};
use crate::shared::{Connections, Shared};
use crate::storage::{Sqlite, Storage};

/// A bound Tidings server, ready to run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Prepares the data dir and the authenticator, and binds `config.listen`.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        config.check()?;
        let auth = Authenticator::from_config(&config.auth, &config.data_dir)?;
        let types = ResourceTypes::compile(&config.resource_types)?;
        let storage = open_storage(&config).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let shared = Arc::new(Shared {
            config,
            auth,
            resources: Resources::new(types, storage),
            connections: Arc::new(Connections::default()),
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
        });
        Ok(Server { listener, shared })
    }

    /// The address the server listens on (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.shared.config.listen)
    }

    /// The authenticator, to mint tokens (tests, `tidings token`) and to tell whether the key was generated.
    pub fn authenticator(&self) -> &Authenticator {
        &self.shared.auth
    }

    /// Serves until `shutdown` resolves, then stops accepting, sends every session `disconnect` 1001, and
    /// returns when they have closed or the configured bound has passed.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Server { listener, shared } = self;
        let app = http::router(Arc::clone(&shared));
        let stop = shared.shutdown.clone();
        let serving = tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await
        });
        shutdown.await;
        info!("shutting down: closing {} connections", shared.connections.total());
        shared.shutdown.cancel();
        shared.sessions.close();
        let bound = Duration::from_millis(shared.config.shutdown_timeout_ms);
        let drained = tokio::time::timeout(bound, async {
            shared.sessions.wait().await;
            serving.await
        })
        .await;
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

/// Opens the configured storage: PostgreSQL for a `postgres://` URL, otherwise SQLite in the data dir.
async fn open_storage(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    let window = Duration::from_millis(config.storage.idempotency_window_ms);
    match &config.storage.url {
        Some(url) => anyhow::bail!("PostgreSQL storage ({url}) is not available in this build yet"),
        None => {
            let path = config.data_dir.join("tidings.db");
            let sqlite = Sqlite::open(&path, window)?;
            info!("storing resources in {}", path.display());
            Ok(Arc::new(sqlite))
        }
    }
}
