//! `tidings notify`: sends a notification through a running server's HTTP API, with an API key.

use anyhow::Context;
use serde_json::{json, Map, Value};

/// Arguments of `tidings notify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// One of the server's `api_keys` (or set TIDINGS_API_KEY).
    #[arg(long, env = "TIDINGS_API_KEY", hide_env_values = true)]
    api_key: String,
    /// A user to notify; repeat for several.
    #[arg(long = "to", required_unless_present = "everyone")]
    to: Vec<String>,
    /// Notify every user the server knows.
    #[arg(long, conflicts_with = "to")]
    everyone: bool,
    /// The headline.
    #[arg(long)]
    title: String,
    /// The text.
    #[arg(long, default_value = "")]
    body: String,
    /// info, success, warning or error.
    #[arg(long, default_value = "info")]
    level: String,
    /// A JSON object to attach.
    #[arg(long)]
    data: Option<String>,
}

/// Sends the notification and prints the server's answer.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let data: Map<String, Value> = match &args.data {
        Some(text) => serde_json::from_str(text).context("--data must be a JSON object")?,
        None => Map::new(),
    };
    let to = if args.everyone { json!("*") } else { json!(args.to) };
    let body = json!({ "to": to, "level": args.level, "title": args.title, "body": args.body, "data": data });
    let text =
        crate::server_api::call(&args.url, &args.api_key, "POST", "/api/v1/notifications", Some(body.to_string()))?;
    println!("{}", text.trim());
    Ok(())
}
