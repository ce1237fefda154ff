//! `tidings serve`: runs the server until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use tidings_server::{Config, Server};
use tracing_subscriber::EnvFilter;

/// Arguments of `tidings serve`; each overrides the config file and the environment.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Where the server keeps its files [default: ./tidings-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A TOML config file (docs/configuration.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Development mode, on this machine only: anyone may sign in (`POST /auth/dev-token`), and pages on
    /// http://localhost:* (a front end's dev server) may connect.
    #[arg(long)]
    dev: bool,
}

/// Loads the config: defaults, then the file, then `TIDINGS_*`, then the flags.
pub fn load(
    config: Option<&PathBuf>,
    listen: Option<SocketAddr>,
    data_dir: Option<&PathBuf>,
) -> anyhow::Result<Config> {
    let mut loaded = Config::load(config.map(PathBuf::as_path))?;
    if let Some(listen) = listen {
        loaded.listen = listen;
    }
    if let Some(dir) = data_dir {
        loaded.data_dir = dir.clone();
    }
    loaded.check()?;
    Ok(loaded)
}

/// Runs the server.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut config = load(args.config.as_ref(), args.listen, args.data_dir.as_ref())?;
    config.dev |= args.dev;
    config.check()?;
    let node = config.node.clone().unwrap_or_else(|| config.listen.to_string());
    let traces = init_logging(&config.log.format, &config.log.level, &config.traces, &node)?;
    for name in &config.ignored_environment {
        tracing::warn!("{name} names no setting of tidings serve; it is ignored (docs/configuration.md lists them)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let served = runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let server = Server::bind(config).await?;
        let addr = server.local_addr();
        let (ws, http) = if server.is_tls() { ("wss", "https") } else { ("ws", "http") };
        println!("Tidings is listening on {ws}://{addr}/ws (health: {http}://{addr}/healthz)");
        match server.authenticator().generated_secret() {
            Some(secret) => {
                println!(
                    "No auth key is configured: tokens are signed with the secret generated in {}.",
                    secret.display()
                );
                println!("Get a token:  tidings token --data-dir {} --user alice", data_dir.display());
                if addr.ip().is_loopback() {
                    println!("Dev sign-in:  POST http://{addr}/auth/dev-token {{\"userId\":\"alice\"}}");
                }
            }
            None => {
                println!("Tokens are verified with the configured keys (auth.secret, public_key_file or jwks_url).")
            }
        }
        if server.shared().config.dev {
            println!("Development mode: anyone may sign in, and pages on http://localhost:* may connect.");
            println!("The board:    {http}://{addr}/");
            println!(
                "In a page:    const client = createClient({{ url: '{ws}://{addr}/ws', getToken: () => \
                 fetch('{http}://{addr}/auth/dev-token', {{ method: 'POST', headers: {{ 'content-type': \
                 'application/json' }}, body: JSON.stringify({{ userId: 'alice' }}) }}).then((r) => r.json())\
                 .then((r) => r.token) }});"
            );
        }
        println!("Try it:       tidings client {ws}://{addr}/ws --token <token>");
        server.run(shutdown_signal()).await
    });
    // The spans still in the batch go to the collector before the process ends.
    if let Some(traces) = traces {
        if let Err(error) = traces.shutdown() {
            eprintln!("tidings: the last traces were not sent: {error}");
        }
    }
    served
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Structured logs with tracing: text for people, JSON for collectors; `RUST_LOG` overrides the level. With a
/// collector configured, spans go to it too (`traces.rs`); its provider is returned, to flush at exit.
fn init_logging(
    format: &str,
    level: &str,
    traces: &tidings_server::config::TracesConfig,
    node: &str,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let logs =
        if format == "json" { logs.json().with_filter(filter).boxed() } else { logs.with_filter(filter).boxed() };
    let (spans, provider) = match crate::traces::layer(traces, node)? {
        Some((layer, provider)) => (Some(layer), Some(provider)),
        None => (None, None),
    };
    let _ = tracing_subscriber::registry().with(logs).with(spans).try_init();
    Ok(provider)
}
