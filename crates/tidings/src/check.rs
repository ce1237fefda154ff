//! `tidings check`: decodes messages the way the server (or a client) does and prints the verdict.
//!
//! For people writing a client: paste a message, see whether Tidings accepts it, and read the exact `error`
//! it would answer with otherwise.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tidings_protocol::{decode_client, decode_server, encode, DecodeError, Envelope, ServerMessage};

/// Arguments of `tidings check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which side sent the messages: `client` (checked as the server would) or `server` (as a client would).
    #[arg(long, value_parser = ["client", "server"], default_value = "client")]
    from: String,
    /// A file with one message per line; standard input when absent.
    file: Option<PathBuf>,
}

/// Checks every non-empty line; the exit code is 0 when all were valid, 1 otherwise.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => {
            Box::new(BufReader::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?))
        }
        None => Box::new(io::stdin().lock()),
    };
    let mut out = io::stdout().lock();
    let mut all_valid = true;
    for line in input.lines() {
        let line = line.context("cannot read input")?;
        if line.trim().is_empty() {
            continue;
        }
        let verdict = match args.from.as_str() {
            "server" => decode_server(&line).map(|env| (env.message.message_type(), env.timestamp)),
            _ => decode_client(&line).map(|env| (env.message.message_type(), env.timestamp)),
        };
        match verdict {
            Ok((ty, timestamp)) => writeln!(out, "ok {ty} (timestamp {timestamp} ms)")?,
            Err(rejected) => {
                all_valid = false;
                writeln!(out, "{}", error_reply(rejected))?;
            }
        }
    }
    Ok(if all_valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The `error` message a Tidings server sends for a rejected message.
fn error_reply(rejected: DecodeError) -> String {
    encode(&Envelope::now(rejected.request_id, ServerMessage::Error(rejected.error)))
}
