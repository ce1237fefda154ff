//! The `tidings` command: one binary for the server and its tools.

mod admin;
mod bench;
mod check;
mod client;
mod config;
mod notify;
mod serve;
mod server_api;
mod token;
mod traces;
mod types;

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
    /// Run the server.
    Serve(serve::Args),
    /// Print a token signed with the server's key.
    Token(token::Args),
    /// Open an interactive session on a server.
    Client(client::Args),
    /// Send a notification through a server's HTTP API.
    Notify(notify::Args),
    /// Operate a running server: list and disconnect connections.
    Admin(admin::Args),
    /// Load a server that speaks protocol v1 with a workload and report throughput and latency.
    Bench(bench::Args),
    /// Decode protocol messages, one JSON object per line, and print what a Tidings peer makes of each.
    Check(check::Args),
    /// Check a config file as the server would at start, or print every setting's default.
    Config(config::Args),
    /// Write TypeScript types of the configured resource types, for the SDK's `createClient<Types>()`.
    Types(types::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Token(args) => token::run(&args),
        Command::Client(args) => client::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Notify(args) => notify::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Admin(args) => admin::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Check(args) => check::run(&args),
        Command::Config(args) => config::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Types(args) => types::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(&args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tidings: {error:#}");
            ExitCode::FAILURE
        }
    }
}
