//! The settings' unit tests: defaults, a file then the environment, schema files, and what is refused.

use super::*;
use serde_json::json;

#[test]
fn defaults_are_the_documented_ones() {
    let config = Config::default();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.data_dir, PathBuf::from("./tidings-data"));
    assert!(config.check().is_ok());
}

#[test]
fn a_file_then_the_environment_override_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("tidings.toml", "listen = \"127.0.0.1:9000\"\n[limits]\nmax_message_bytes = 1000\n")?;
        jail.set_env("TIDINGS_LIMITS__RATE_BURST", "7");
        jail.set_env("TIDINGS_ALLOWED_ORIGINS", r#"["https://app.example.com"]"#);
        let config = Config::load(Some(Path::new("tidings.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.limits.max_message_bytes, 1000);
        assert_eq!(config.limits.rate_burst, 7);
        assert_eq!(config.limits.rate_per_second, 50);
        assert_eq!(config.allowed_origins, ["https://app.example.com"]);
        jail.set_env("TIDINGS_TEST_POSTGRES_URL", "postgres://somewhere/else");
        jail.set_env("TIDINGS_STORAGE__URL", "postgres://db/tidings");
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.storage.url.as_deref(), Some("postgres://db/tidings"), "test variables are not settings");
        Ok(())
    });
}

#[test]
fn a_schema_file_is_read_beside_the_config_and_never_with_a_schema() {
    figment::Jail::expect_with(|jail| {
        jail.create_dir("conf")?;
        jail.create_dir("conf/schemas")?;
        jail.create_file("conf/schemas/note.json", r#"{ "type": "object", "properties": { "text": {} } }"#)?;
        let note = "[[resource_types]]\nname = \"note\"\nid_prefix = \"NTE\"\nschema_file = \"schemas/note.json\"\n";
        jail.create_file("conf/tidings.toml", note)?;
        let config = Config::load(Some(Path::new("conf/tidings.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(config.resource_types[0].schema["properties"]["text"], json!({}));
        let both = format!("{note}schema = {{ type = \"object\" }}\n");
        jail.create_file("conf/both.toml", &both)?;
        let error = Config::load(Some(Path::new("conf/both.toml"))).expect_err("both");
        assert!(error.to_string().contains("not both"), "{error}");
        Ok(())
    });
}

#[test]
fn unknown_keys_and_contradictions_are_refused() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("bad.toml", "listn = \"127.0.0.1:9000\"\n")?;
        let error = Config::load(Some(Path::new("bad.toml"))).expect_err("unknown key");
        assert!(error.to_string().contains("listn"), "{error}");
        jail.create_file("worse.toml", "[heartbeat]\nping_interval_ms = 5000\nidle_timeout_ms = 1000\n")?;
        assert!(Config::load(Some(Path::new("worse.toml"))).is_err());
        Ok(())
    });
}

#[test]
fn durations_are_milliseconds_or_text_with_a_unit_in_a_file_and_in_the_environment() {
    figment::Jail::expect_with(|jail| {
        let file = "[heartbeat]\nping_interval_ms = \"25s\"\nidle_timeout_ms = 90000\n[events]\nretain_ms = \"7days\"\n\
                    [[webhooks]]\nname = \"out\"\nurl = \"http://127.0.0.1:9/\"\nresource_type = \"order\"\nsecret = \"a-secret-of-some-length\"\ntimeout_ms = \"2s\"\n";
        jail.create_file("tidings.toml", file)?;
        jail.set_env("TIDINGS_AUTH__TOKEN_GRACE_MS", "1m");
        jail.set_env("TIDINGS_SHUTDOWN_TIMEOUT_MS", "15000");
        let config = Config::load(Some(Path::new("tidings.toml"))).map_err(|e| e.to_string())?;
        assert_eq!((config.heartbeat.ping_interval_ms, config.heartbeat.idle_timeout_ms), (25_000, 90_000));
        assert_eq!(config.events.retain_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(config.webhooks[0].timeout_ms, 2_000);
        assert_eq!((config.auth.token_grace_ms, config.shutdown_timeout_ms), (60_000, 15_000));
        jail.set_env("TIDINGS_HEARTBEAT__IDLE_TIMEOUT_MS", "a while");
        let error = Config::load(Some(Path::new("tidings.toml"))).expect_err("not a duration").to_string();
        assert!(error.contains("a while") && error.contains("25s"), "{error}");
        Ok(())
    });
}

#[test]
fn api_keys_may_come_from_a_file_beside_the_config() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("keys.txt", "# the server API's keys\nkey-from-the-file-0123456789\n\n")?;
        jail.create_file(
            "tidings.toml",
            "api_keys = [\"key-from-the-config-0123456\"]\napi_keys_file = \"keys.txt\"\n",
        )?;
        let config = Config::load(Some(Path::new("tidings.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(config.api_keys, ["key-from-the-config-0123456", "key-from-the-file-0123456789"]);
        jail.create_file("keys.txt", "short\n")?;
        let error = Config::load(Some(Path::new("tidings.toml"))).expect_err("a short key").to_string();
        assert!(error.contains("16 characters"), "{error}");
        Ok(())
    });
}
