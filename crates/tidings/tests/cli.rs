//! The `tidings` binary as a new user meets it: serve, mint a token, hold a session, stop with SIGTERM.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use tidings_client::{Client, Push};

mod common;

use common::{Served, TIDINGS};

#[test]
fn a_new_user_serves_mints_a_token_and_holds_a_session_with_tidings_client() {
    let served = Served::start();
    let token = served.token("alice");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let mut client = Command::new(TIDINGS)
        .args(["client", &served.url, "--token", &token])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tidings client starts");
    client.stdin.take().expect("stdin").write_all(b"ping\nsubscribe order\nquit\n").expect("type commands");
    let output = client.wait_with_output().expect("client ends");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("\"type\": \"auth_success\""), "{text}");
    assert!(text.contains("\"userId\": \"alice\""), "{text}");
    assert!(text.contains("\"type\": \"pong\""), "{text}");
}

#[test]
fn sigterm_says_goodbye_to_every_client_and_exits_within_the_bound() {
    let mut served = Served::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (client, mut pushes, _) = Client::connect(&served.url).await.expect("connect");
        client.auth(&served.token("bob")).await.expect("auth");
        let status = Command::new("kill").args(["-TERM", &served.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let mut notice = None;
        while let Some(push) = pushes.next_within(Duration::from_secs(10)).await {
            match push {
                Push::Message(envelope) => notice = Some(envelope.message),
                Push::Closed { code, .. } => {
                    assert_eq!(code, Some(1001));
                    break;
                }
                Push::Unreadable { text, .. } => panic!("unreadable: {text}"),
            }
        }
        let Some(tidings_protocol::ServerMessage::Disconnect(notice)) = notice else {
            panic!("no disconnect: {notice:?}")
        };
        assert_eq!((notice.code, notice.reconnect), (1001, true));
    });
    // Wait for the exit itself, bounded: a thread waits on the process and reports.
    let mut child = served.take_child();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx.recv_timeout(Duration::from_secs(10)).expect("tidings serve exits after SIGTERM").expect("wait");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn check_prints_the_verdict_of_each_message_and_fails_when_one_is_invalid() {
    let mut check = Command::new(TIDINGS)
        .args(["check"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tidings check starts");
    let input = concat!(
        r#"{"type":"auth","timestamp":1630423456,"payload":{"token":"t","userId":"u"}}"#,
        "\n",
        r#"{"type":"read","timestamp":1,"requestId":"r1","payload":{"resourceType":"order","limit":0}}"#,
        "\n"
    );
    check.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    let output = check.wait_with_output().expect("ends");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "ok auth (timestamp 1630423456000 ms)");
    assert!(lines[1].contains(r#""requestId":"r1""#) && lines[1].contains("/payload/limit"), "{}", lines[1]);
}

#[test]
fn tidings_notify_and_tidings_admin_work_through_the_server_api() {
    const KEY: &str = "a-server-api-key-for-tests";
    let served = common::Served::start_in(
        tempfile::tempdir().expect("dir"),
        &[("TIDINGS_API_KEYS", r#"["a-server-api-key-for-tests"]"#)],
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (client, mut pushes, _) = Client::connect(&served.url).await.expect("connect");
        client.auth(&served.token("alice")).await.expect("auth");
        let http = served.url.replace("ws://", "http://").replace("/ws", "");
        let notify = |key: &str| {
            Command::new(TIDINGS)
                .args([
                    "notify",
                    "--url",
                    &http,
                    "--api-key",
                    key,
                    "--to",
                    "alice",
                    "--title",
                    "Hello",
                    "--body",
                    "From ops.",
                ])
                .output()
                .expect("tidings notify runs")
        };
        let refused = notify("not-the-right-key-at-all");
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("unknown_api_key"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
        let sent = notify(KEY);
        assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
        let answer: serde_json::Value = serde_json::from_slice(&sent.stdout).expect("json answer");
        assert_eq!(answer["recipients"], 1);
        loop {
            match pushes.next_within(Duration::from_secs(10)).await {
                Some(Push::Message(envelope)) => {
                    if let tidings_protocol::ServerMessage::Notification(n) = envelope.message {
                        assert_eq!(
                            (n.title.as_str(), n.body.as_str(), Some(n.id.as_str())),
                            ("Hello", "From ops.", answer["id"].as_str())
                        );
                        break;
                    }
                }
                other => panic!("expected the notification, got {other:?}"),
            }
        }
        // The same key operates the server: list the connections, then cut alice off with a reason.
        let admin = |args: &[&str]| {
            let mut command = Command::new(TIDINGS);
            command.args(["admin", "--url", &http, "--api-key", KEY]).args(args);
            let output = command.output().expect("tidings admin runs");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let listed = admin(&["connections"]);
        assert!(listed.contains("\"userId\": \"alice\""), "{listed}");
        assert!(admin(&["webhooks"]).contains("\"webhooks\": []"), "a server without webhooks lists none");
        let unknown = Command::new(TIDINGS)
            .args(["admin", "--url", &http, "--api-key", KEY, "replay", "nope", "--from", "1"])
            .output()
            .expect("tidings admin runs");
        let said = String::from_utf8_lossy(&unknown.stderr);
        assert!(!unknown.status.success() && said.contains("there is no webhook 'nope'"), "{said}");
        let answer = admin(&["disconnect-user", "alice", "--reason", "see you"]);
        assert!(answer.contains("\"disconnected\": 1"), "{answer}");
        loop {
            match pushes.next_within(Duration::from_secs(10)).await {
                Some(Push::Message(envelope)) => {
                    if let tidings_protocol::ServerMessage::Disconnect(notice) = envelope.message {
                        assert_eq!((notice.code, notice.reason.as_str()), (4502, "see you"));
                        break;
                    }
                }
                other => panic!("expected the disconnect, got {other:?}"),
            }
        }
    });
}

#[test]
fn token_inspect_shows_the_claims_and_what_the_server_would_answer() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        let output = Command::new(TIDINGS).args(args).arg("--data-dir").arg(data_dir.path()).output().expect("runs");
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let (minted, token) = run(&["token", "--user", "alice", "--role", "admin"]);
    assert!(minted, "{token}");
    let token = token.trim().to_owned();
    let (accepted, text) = run(&["token", "inspect", &token]);
    assert!(accepted, "{text}");
    assert!(text.contains("\"sub\": \"alice\""), "the claims are shown: {text}");
    assert!(text.contains("accepted: user alice, roles [\"admin\"]"), "{text}");
    // Another signature: refused, with the reason auth_failed would give, and a failing exit status.
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[2] = "AAAA";
    let (accepted, text) = run(&["token", "inspect", &parts.join(".")]);
    assert!(!accepted, "{text}");
    assert!(text.contains("refused: bad_signature (UNAUTHORIZED)"), "{text}");
}

#[test]
fn variables_of_the_cli_in_the_environment_never_stop_the_server() {
    // The shell of an operator who uses `tidings notify` and `tidings admin` exports TIDINGS_API_KEY.
    let exported = [("TIDINGS_API_KEY", "key-of-the-cli"), ("TIDINGS_NOT__A_SETTING", "1")];
    let served = Served::start_in(tempfile::tempdir().expect("temp dir"), &exported);
    let data_dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(TIDINGS)
        .args(["token", "--user", "alice", "--data-dir"])
        .arg(data_dir.path())
        .envs(exported)
        .output()
        .expect("tidings token runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (client, _pushes, _) = Client::connect(&served.url).await.expect("the server serves");
        client.auth(&served.token("alice")).await.expect("auth");
    });
}

/// The status line of a raw HTTP/1.1 request to `served`.
fn http_status(served: &Served, request: &str) -> String {
    use std::io::{BufRead, BufReader};
    let mut stream = std::net::TcpStream::connect(served.address()).expect("connects");
    stream.write_all(request.as_bytes()).expect("sends");
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).expect("a status line");
    status.trim().to_owned()
}

#[test]
fn dev_mode_signs_anyone_in_and_lets_a_front_ends_dev_server_connect() {
    let secret = ("TIDINGS_AUTH__SECRET", "a-configured-secret-of-at-least-32-bytes");
    let upgrade = |served: &Served, origin: &str| {
        let host = served.address();
        http_status(
            served,
            &format!(
                "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ),
        )
    };
    let sign_in = |served: &Served| {
        let (host, body) = (served.address(), r#"{"userId":"alice"}"#);
        http_status(
            served,
            &format!(
                "POST /auth/dev-token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let strict = Served::start_in(tempfile::tempdir().expect("temp dir"), &[secret]);
    assert!(upgrade(&strict, "http://localhost:5173").contains("403"), "a page of another port is refused");
    assert!(sign_in(&strict).contains("404"), "a configured secret signs no one in");

    let dev = Served::start_in(tempfile::tempdir().expect("temp dir"), &[secret, ("TIDINGS_DEV", "true")]);
    assert!(upgrade(&dev, "http://localhost:5173").contains("101"), "a Vite page may connect");
    assert!(upgrade(&dev, "http://127.0.0.1:3000").contains("101"));
    assert!(upgrade(&dev, "https://evil.example").contains("403"), "other sites may not");
    assert!(sign_in(&dev).contains("200"), "anyone may sign in");
}

#[test]
fn tidings_config_prints_the_defaults_and_checks_a_file_as_serve_would() {
    let run = |args: &[&str]| {
        let output = Command::new(TIDINGS)
            .args(args)
            .env_remove("TIDINGS_API_KEY")
            .stderr(Stdio::piped())
            .output()
            .expect("tidings config runs");
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), said)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // The defaults are a config file the server takes as it is.
    let (printed, defaults) = run(&["config", "defaults"]);
    assert!(printed && defaults.contains("[limits]") && defaults.contains("name = \"order\""), "{defaults}");
    let file = dir.path().join("defaults.toml");
    std::fs::write(&file, &defaults).expect("written");
    let (valid, said) = run(&["config", "check", "--config", file.to_str().expect("a path")]);
    assert!(valid && said.contains("config is valid: resource types order"), "{said}");

    // A rule naming a field the schema does not declare, and a webhook of a type that does not exist: each
    // refused with its place, as `tidings serve` would refuse to start.
    let schema = r#"schema = { type = "object", properties = { name = { type = "string" } } }"#;
    let cases = [
        (
            format!("[[resource_types]]\nname = \"note\"\nid_prefix = \"NTE\"\n{schema}\n[resource_types.permissions]\nread = [{{ field = \"resource.data.colour\", eq = \"red\" }}]\n"),
            "permissions.read[0]",
        ),
        (
            "[[webhooks]]\nname = \"out\"\nurl = \"http://127.0.0.1:9/\"\nresource_type = \"nope\"\nsecret = \"a-secret-of-some-length\"\n"
                .to_owned(),
            "there is no resource type 'nope'",
        ),
    ];
    for (text, reason) in cases {
        let file = dir.path().join("broken.toml");
        std::fs::write(&file, &text).expect("written");
        let (valid, said) = run(&["config", "check", "--config", file.to_str().expect("a path")]);
        assert!(!valid && said.contains(reason), "{text}\n{said}");
    }
}
