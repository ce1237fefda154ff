//! The `tidings` command: one binary for the server and its tools.

mod check;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tidings: a real-time WebSocket API server.
#[derive(Debug, Parser)]
#[command(name = "tidings", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode protocol messages, one JSON object per line, and print what a Tidings peer makes of each.
    Check(check::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tidings: {error:#}");
            ExitCode::FAILURE
        }
    }
}
