//! The `TIDINGS_*` environment as settings: the variables that name a setting, and the ones that do not.
//!
//! A config file's unknown key stops the server (a typo there is the operator's and must be seen). The environment
//! is not the operator's alone: a shell exports the CLI's own variables (`TIDINGS_API_KEY` for `tidings notify`),
//! and a variable that names no setting is left out and reported instead, so that it never stops the server.

use figment::providers::Env;
use serde_json::Value;

/// `TIDINGS_TEST_*` and `TIDINGS_BLESS` steer the test suite; they are neither settings nor worth a warning.
fn steers_the_tests(key: &str) -> bool {
    key.starts_with("test_") || key == "bless"
}

/// The variables of the environment that name settings of `defaults` (the default config as JSON), split into
/// tables at `__`; and the names of the `TIDINGS_*` variables that name none.
pub fn settings(defaults: &Value) -> (figment::providers::Env, Vec<String>) {
    let ignored = std::env::vars_os()
        .filter_map(|(key, _)| key.into_string().ok())
        .filter_map(|key| key.strip_prefix("TIDINGS_").map(str::to_owned))
        .filter(|key| {
            let lower = key.to_ascii_lowercase();
            !steers_the_tests(&lower) && !names_a_setting(defaults, &lower)
        })
        .map(|key| format!("TIDINGS_{key}"))
        .collect();
    let defaults = defaults.clone();
    let env = Env::prefixed("TIDINGS_")
        .filter(move |key| {
            let key = key.as_str().to_ascii_lowercase();
            !steers_the_tests(&key) && names_a_setting(&defaults, &key)
        })
        .split("__");
    (env, ignored)
}

/// Whether `key` (lower case, tables joined by `__`) names a setting: each name a key of the table before it. A
/// setting without a default (`tls`) takes any keys below it, and so do the resource types, which are named by
/// the operator.
fn names_a_setting(defaults: &Value, key: &str) -> bool {
    let mut names = key.split("__");
    let Some(first) = names.next() else { return false };
    if first == "resource_types" {
        return true;
    }
    let Some(mut at) = defaults.get(first) else { return false };
    for name in names {
        match at {
            Value::Object(table) => match table.get(name) {
                Some(next) => at = next,
                None => return false,
            },
            Value::Null => return true,
            // A value, with more names after it.
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn variables_that_name_no_setting_are_reported_and_never_stop_the_server() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TIDINGS_API_KEY", "the CLI's own");
            jail.set_env("TIDINGS_AUTH__NOPE", "1");
            jail.set_env("TIDINGS_LIMITS__MAX_SUBSCRIPTIONS__DEEPER", "1");
            jail.set_env("TIDINGS_LIMITS__MAX_SUBSCRIPTIONS", "7");
            jail.set_env("TIDINGS_TLS__CERT_FILE", "cert.pem");
            jail.set_env("TIDINGS_TLS__KEY_FILE", "key.pem");
            jail.set_env("TIDINGS_TEST_ANYTHING", "steers the tests");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.limits.max_subscriptions, 7);
            assert!(config.tls.is_some(), "a setting without a default takes its keys");
            let mut ignored = config.ignored_environment.clone();
            ignored.sort();
            assert_eq!(ignored, ["TIDINGS_API_KEY", "TIDINGS_AUTH__NOPE", "TIDINGS_LIMITS__MAX_SUBSCRIPTIONS__DEEPER"]);
            // A config file's unknown key still stops it.
            jail.create_file("typo.toml", "[auth]\nsecert = \"x\"\n")?;
            assert!(Config::load(Some(Path::new("typo.toml"))).is_err());
            Ok(())
        });
    }
}
