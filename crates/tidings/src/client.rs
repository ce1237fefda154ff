//! `tidings client`: an interactive prompt on a Tidings connection that prints every message it receives.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value};
use tidings_client::{Client, ClientError, Push};
use tidings_protocol::{
    encode, Auth, ClientMessage, Create, Delete, Empty, Envelope, Limit, Read, ResourceId, ResourceType, Seq,
    ServerMessage, Subscribe, Text, Topic, Unsubscribe, Update,
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Arguments of `tidings client`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's WebSocket URL.
    #[arg(default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// A token to authenticate with right after connecting.
    #[arg(long)]
    token: Option<String>,
}

const HELP: &str = "\
commands (or paste a whole JSON message):
  ping
  auth TOKEN
  create TYPE {data}              e.g. create order {\"productId\":\"P1\",\"quantity\":2,\"totalAmount\":9.5}
  read TYPE ID
  list TYPE [{filter}] [LIMIT]
  update TYPE ID {patch} [VERSION]
  delete TYPE ID [VERSION]
  subscribe TOPIC [SINCE]          e.g. subscribe order 0
  unsubscribe SUBSCRIPTION_ID
  help, quit";

/// Runs the prompt until `quit`, end of input, or the connection closes.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(session(args))
}

async fn session(args: &Args) -> anyhow::Result<()> {
    let (client, mut pushes, connected) =
        Client::connect(&args.url).await.with_context(|| format!("cannot connect to {}", args.url))?;
    let client = client.with_timeout(Duration::from_secs(30));
    println!("connected: session {} (protocol {})", connected.session_id, connected.protocol_version);
    if let Some(token) = &args.token {
        let token = Text::new(token.clone()).map_err(anyhow::Error::msg)?;
        show_reply(client.request_envelope(ClientMessage::Auth(Auth { token, user_id: None })).await);
    }
    println!("type 'help' for commands");
    let printer = tokio::spawn(async move {
        while let Some(push) = pushes.next().await {
            match push {
                Push::Message(envelope) => println!("<< {}", pretty(&encode(&envelope))),
                Push::Unreadable { text, error } => println!("<< (unreadable: {error}) {text}"),
                Push::Closed { code, reason } => {
                    println!("connection closed: {} {reason}", code.map_or("-".to_owned(), |c| c.to_string()));
                    break;
                }
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        if printer.is_finished() {
            break;
        }
        match line {
            "" => continue,
            "quit" | "exit" => {
                let _ = client.disconnect();
                break;
            }
            "help" => println!("{HELP}"),
            _ if line.starts_with('{') => {
                if let Err(e) = client.send_text(line.to_owned()) {
                    println!("!! {e}");
                }
            }
            _ => match parse(line) {
                Ok(message) => show_reply(client.request_envelope(message).await),
                Err(e) => println!("!! {e:#}\n{HELP}"),
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), printer).await;
    Ok(())
}

fn show_reply(reply: Result<Envelope<ServerMessage>, ClientError>) {
    match reply {
        Ok(envelope) => println!("<- {}", pretty(&encode(&envelope))),
        Err(e) => println!("!! {e}"),
    }
}

fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| text.to_owned())
}

/// Turns a short command into a typed message.
fn parse(line: &str) -> anyhow::Result<ClientMessage> {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let mut words = rest.split_whitespace();
    let mut word = |what: &str| words.next().map(str::to_owned).with_context(|| format!("{command} needs {what}"));
    Ok(match command {
        "ping" => ClientMessage::Ping(Empty {}),
        "auth" => {
            ClientMessage::Auth(Auth { token: Text::new(word("a token")?).map_err(anyhow::Error::msg)?, user_id: None })
        }
        "create" => {
            let (ty, json) = rest.split_once(' ').context("create needs TYPE {data}")?;
            ClientMessage::Create(Create { resource_type: resource_type(ty)?, data: object(json)? })
        }
        "read" => ClientMessage::Read(Read {
            resource_type: resource_type(&word("TYPE")?)?,
            id: Some(resource_id(&word("ID")?)?),
            filter: None,
            query: None,
            order_by: None,
            limit: None,
            cursor: None,
            fields: None,
            count: None,
        }),
        "list" => {
            let ty = resource_type(&word("TYPE")?)?;
            let after = rest.split_once(' ').map_or("", |(_, after)| after.trim());
            let (filter, limit) = match after.rfind('}') {
                Some(end) => (Some(&after[..=end]), after[end + 1..].trim()),
                None => (None, after),
            };
            let filter =
                filter.map(|f| serde_json::from_str(f).context("the filter must map fields to values")).transpose()?;
            let limit = match limit {
                "" => None,
                n => Some(Limit::new(n.parse().context("LIMIT must be a number")?).map_err(anyhow::Error::msg)?),
            };
            ClientMessage::Read(Read {
                resource_type: ty,
                id: None,
                filter,
                query: None,
                order_by: None,
                limit,
                cursor: None,
                fields: None,
                count: None,
            })
        }
        "update" => {
            let ty = resource_type(&word("TYPE")?)?;
            let id = resource_id(&word("ID")?)?;
            let json = rest.splitn(3, ' ').nth(2).context("update needs TYPE ID {patch}")?;
            let (patch, version) = split_version(json)?;
            ClientMessage::Update(Update { resource_type: ty, id, patch: object(patch)?, expected_version: version })
        }
        "delete" => {
            let ty = resource_type(&word("TYPE")?)?;
            let id = resource_id(&word("ID")?)?;
            let version = words.next().map(parse_version).transpose()?;
            ClientMessage::Delete(Delete { resource_type: ty, id, expected_version: version })
        }
        "subscribe" => {
            let topic = Topic::new(word("TOPIC")?).map_err(anyhow::Error::msg)?;
            let since = words.next().map(|s| s.parse::<u64>().context("SINCE must be a number")).transpose()?;
            let since = since.map(Seq::new).transpose().map_err(anyhow::Error::msg)?;
            ClientMessage::Subscribe(Subscribe { topic, since, query: None, snapshot: None })
        }
        "unsubscribe" => {
            let id = Text::new(word("a subscription id")?).map_err(anyhow::Error::msg)?;
            ClientMessage::Unsubscribe(Unsubscribe { subscription_id: id })
        }
        other => anyhow::bail!("unknown command '{other}'"),
    })
}

fn resource_type(text: &str) -> anyhow::Result<ResourceType> {
    ResourceType::new(text).map_err(|e| anyhow::anyhow!("TYPE {e}"))
}

fn resource_id(text: &str) -> anyhow::Result<ResourceId> {
    ResourceId::new(text).map_err(|e| anyhow::anyhow!("ID {e}"))
}

fn object(json: &str) -> anyhow::Result<Map<String, Value>> {
    serde_json::from_str(json.trim()).context("expected a JSON object")
}

fn parse_version(text: &str) -> anyhow::Result<tidings_protocol::Version> {
    let number = text.parse::<u64>().context("VERSION must be a number")?;
    tidings_protocol::Version::new(number).map_err(anyhow::Error::msg)
}

/// Splits `{json} VERSION` into the JSON and the optional version after its closing brace.
fn split_version(text: &str) -> anyhow::Result<(&str, Option<tidings_protocol::Version>)> {
    let end = text.rfind('}').context("expected a JSON object")?;
    let version = text[end + 1..].trim();
    Ok((&text[..=end], (!version.is_empty()).then(|| parse_version(version)).transpose()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_commands_become_typed_messages() {
        assert!(matches!(parse("ping"), Ok(ClientMessage::Ping(_))));
        let Ok(ClientMessage::Create(create)) = parse(r#"create order {"productId":"P1","quantity":2}"#) else {
            panic!("create should parse");
        };
        assert_eq!(create.data.get("quantity"), Some(&Value::from(2)));
        let Ok(ClientMessage::Update(update)) = parse(r#"update order ORD-1 {"quantity":3} 4"#) else {
            panic!("update should parse");
        };
        assert_eq!(update.expected_version.map(|v| v.get()), Some(4));
        let Ok(ClientMessage::Read(list)) = parse(r#"list order {"status":"paid"} 5"#) else {
            panic!("list should parse");
        };
        assert_eq!(list.limit.map(|l| l.get()), Some(5));
        assert!(list.filter.is_some_and(|f| f.len() == 1));
        assert!(
            matches!(parse("subscribe order 7"), Ok(ClientMessage::Subscribe(s)) if s.since.map(|s| s.get()) == Some(7))
        );
        assert!(parse("create Order {}").is_err());
        assert!(parse("frobnicate").is_err());
    }
}
