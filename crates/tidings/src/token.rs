//! `tidings token`: mints a token signed with the server's key, for a user and roles.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tidings_server::Authenticator;

/// Arguments of `tidings token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user id (the token's `sub`).
    #[arg(long)]
    user: String,
    /// A role to grant, such as `admin`; repeat for several.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// How long the token is valid, such as `1h`, `30m` or `7d`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// The server's data dir, where an unconfigured server keeps its generated secret [default: ./tidings-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The server's TOML config file, when it configures auth.secret.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Prints a fresh token.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = crate::serve::load(args.config.as_ref(), None::<SocketAddr>, args.data_dir.as_ref())?;
    anyhow::ensure!(!args.user.is_empty() && args.user.chars().count() <= 256, "--user must be 1 to 256 characters");
    let auth = Authenticator::from_config(&config.auth, &config.data_dir)?;
    println!("{}", auth.mint(&args.user, &args.roles, args.ttl)?);
    Ok(())
}
