//! `tidings admin`: an operator's commands on a running server, through its admin API with an API key: its
//! connections and its webhooks.

use serde_json::Value;

use crate::server_api::call;

/// Arguments of `tidings admin`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// One of the server's `api_keys` (or set TIDINGS_API_KEY).
    #[arg(long, env = "TIDINGS_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the live connections: session, user, since, subscriptions, queue depth.
    Connections,
    /// Disconnect one connection (close code 4502).
    Disconnect {
        /// The session id, as `connections` lists it.
        session_id: String,
        /// What the client is told.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Disconnect every connection of a user (close code 4502).
    DisconnectUser {
        /// The user id.
        user_id: String,
        /// What the clients are told.
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the webhooks: cursor, lag, paused, failures, last error (docs/webhooks.md).
    Webhooks,
    /// Pause a webhook: it posts nothing until resumed.
    Pause {
        /// The webhook's name.
        name: String,
    },
    /// Resume a paused webhook from where it stopped.
    Resume {
        /// The webhook's name.
        name: String,
    },
    /// Deliver a webhook's events again from a seq on.
    Replay {
        /// The webhook's name.
        name: String,
        /// The first seq to deliver again.
        #[arg(long)]
        from: u64,
    },
}

/// Runs one admin command and prints the server's answer.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let Some(key) = args.api_key.as_deref() else {
        anyhow::bail!("an API key is needed: --api-key KEY or TIDINGS_API_KEY");
    };
    let query = |reason: &Option<String>| {
        reason.as_ref().map_or_else(String::new, |r| format!("?reason={}", percent_encode(r)))
    };
    let (method, path) = match &args.command {
        Command::Connections => ("GET", "/api/v1/admin/connections".to_owned()),
        Command::Disconnect { session_id, reason } => {
            ("DELETE", format!("/api/v1/admin/connections/{}{}", percent_encode(session_id), query(reason)))
        }
        Command::DisconnectUser { user_id, reason } => {
            ("DELETE", format!("/api/v1/admin/users/{}/connections{}", percent_encode(user_id), query(reason)))
        }
        Command::Webhooks => ("GET", "/api/v1/admin/webhooks".to_owned()),
        Command::Pause { name } => ("POST", format!("/api/v1/admin/webhooks/{}/pause", percent_encode(name))),
        Command::Resume { name } => ("POST", format!("/api/v1/admin/webhooks/{}/resume", percent_encode(name))),
        Command::Replay { name, from } => {
            ("POST", format!("/api/v1/admin/webhooks/{}/replay?from={from}", percent_encode(name)))
        }
    };
    let text = call(&args.url, key, method, &path, None)?;
    let pretty = serde_json::from_str::<Value>(&text).and_then(|v| serde_json::to_string_pretty(&v));
    println!("{}", pretty.unwrap_or(text));
    Ok(())
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for path segments and query values.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
