//! `tidings config`: checks a config file as `tidings serve` would at start, without starting, or prints every
//! setting with its default, as TOML to start a config file from.

use std::path::PathBuf;

use tidings_server::resources::ResourceTypes;
use tidings_server::webhooks::Webhooks;
use tidings_server::Config;

/// Arguments of `tidings config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Load the config (the file, then the `TIDINGS_*` environment), compile its resource types, rules and
    /// webhooks, and say what is wrong, as `tidings serve` would refuse to start; exits with 1 when something is.
    Check {
        /// The TOML config file; without one, the defaults and the environment.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print every setting with its default, as TOML.
    Defaults,
}

/// Checks a config, or prints the defaults.
pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.action {
        Action::Check { config } => {
            let loaded = crate::serve::load(config.as_ref(), None, None)?;
            let types = ResourceTypes::compile(&loaded.resource_types)?;
            Webhooks::compile(&loaded.webhooks, &types)?;
            for name in &loaded.ignored_environment {
                println!("warning: {name} names no setting and is ignored");
            }
            let mut names: Vec<&str> = types.names().collect();
            names.sort_unstable();
            println!(
                "config is valid: resource types {}; {} webhook(s); listens on {}",
                names.join(", "),
                loaded.webhooks.len(),
                loaded.listen
            );
            Ok(())
        }
        Action::Defaults => {
            print!("{}", toml::to_string(&Config::default())?);
            Ok(())
        }
    }
}
