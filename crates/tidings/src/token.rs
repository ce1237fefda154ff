//! `tidings token`: mints a token signed with the server's key, for a user and roles; `tidings token inspect`
//! shows what a token claims and what the server would answer to it, and why.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tidings_server::Authenticator;

/// Arguments of `tidings token`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// The user id (the token's `sub`).
    #[arg(long, required = true)]
    user: Option<String>,
    /// A role to grant, such as `admin`; repeat for several.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// A further claim, `NAME=VALUE`, such as `org=acme`; a VALUE that is JSON (`7`, `true`, `["a","b"]`) is
    /// taken as JSON, anything else as a string. Repeat for several.
    #[arg(long = "claim", value_parser = claim)]
    claims: Vec<(String, serde_json::Value)>,
    /// How long the token is valid, such as `1h`, `30m` or `7d`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    #[command(flatten)]
    server: Server,
}

/// Which server's keys: its config file and data dir.
#[derive(Debug, clap::Args)]
struct Server {
    /// The server's data dir, where an unconfigured server keeps its generated secret [default: ./tidings-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The server's TOML config file, when it configures auth.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print a token's header and claims, and what the server would answer to it (the reason `auth_failed` would
    /// give, when it refuses it). Exits with 1 when the server would refuse it.
    Inspect {
        /// The token.
        token: String,
        #[command(flatten)]
        server: Server,
    },
}

/// Prints a fresh token, or what a token is worth.
pub fn run(args: &Args) -> anyhow::Result<std::process::ExitCode> {
    if let Some(Action::Inspect { token, server }) = &args.action {
        return inspect(token, server);
    }
    let user = args.user.as_deref().unwrap_or_default();
    anyhow::ensure!(!user.is_empty() && user.chars().count() <= 256, "--user must be 1 to 256 characters");
    let auth = authenticator(&args.server)?;
    let claims = args.claims.iter().cloned().collect();
    println!("{}", auth.mint_with(user, &args.roles, claims, args.ttl)?);
    Ok(std::process::ExitCode::SUCCESS)
}

/// `NAME=VALUE` as a claim: VALUE as JSON when it is JSON, else as a string.
fn claim(text: &str) -> Result<(String, serde_json::Value), String> {
    let (name, value) = text.split_once('=').ok_or("a claim is NAME=VALUE")?;
    if name.is_empty() || ["sub", "exp", "iat", "roles"].contains(&name) {
        return Err(format!("'{name}' cannot be set with --claim (use --user, --ttl or --role)"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::from(value));
    Ok((name.to_owned(), value))
}

fn authenticator(server: &Server) -> anyhow::Result<Authenticator> {
    let config = crate::serve::load(server.config.as_ref(), None::<SocketAddr>, server.data_dir.as_ref())?;
    Authenticator::from_config(&config.auth, &config.data_dir)
}

/// Prints the token's parts as they read, unchecked, then the server's verdict.
fn inspect(token: &str, server: &Server) -> anyhow::Result<std::process::ExitCode> {
    let part = |n: usize| -> String {
        let decoded = token.split('.').nth(n).and_then(|part| URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok());
        match decoded.and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok()) {
            Some(json) => serde_json::to_string_pretty(&json).unwrap_or_default(),
            None => "(not base64url JSON)".to_owned(),
        }
    };
    println!("header: {}", part(0));
    println!("claims: {}", part(1));
    let auth = authenticator(server)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let verdict = runtime.block_on(async {
        auth.prefetch().await;
        auth.verify(token).await
    });
    match verdict {
        Ok(identity) => {
            println!(
                "accepted: user {}, roles {:?}, expires at {} (Unix ms)",
                identity.user_id, identity.roles, identity.expires_at_ms
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(rejection) => {
            let payload = rejection.payload();
            println!("refused: {} ({}): {}", rejection.reason(), payload.code, payload.message);
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}
