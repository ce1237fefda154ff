//! The example of docs/resource-types.md, run as written: its TOML and its schema file are taken from the page,
//! `tidings serve --config` starts with them, and its types behave as the page says.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use tidings_client::{Client, Push};

mod common;

use common::TIDINGS;

/// The fenced blocks of a Markdown page, as (language, text).
fn blocks(page: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in page.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(language)) => open = Some((language.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => found.extend(open.take()),
            (Some((_, text)), None) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    found
}

/// Writes the page's config and schema file into `dir`; returns the config's path.
fn write_example(dir: &Path) -> std::path::PathBuf {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/resource-types.md"))
        .expect("docs/resource-types.md");
    let blocks = blocks(&page);
    let (_, toml) = blocks.iter().find(|(language, _)| language == "toml").expect("a TOML block");
    let (_, json) = blocks.iter().find(|(language, _)| language == "json").expect("a JSON block");
    let (name_line, schema) = json.split_once('\n').expect("the file's name, then the file");
    let name = name_line.trim_start_matches("//").trim();
    std::fs::create_dir_all(dir.join(name).parent().expect("a folder")).expect("the folder");
    std::fs::write(dir.join(name), schema).expect("the schema file");
    std::fs::write(dir.join("tidings.toml"), toml).expect("the config");
    dir.join("tidings.toml")
}

/// A server process, killed when the test ends, however it ends.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tidings serve --config` on the example; the child and its WebSocket URL.
fn serve(dir: &Path, config: &Path) -> (Serving, String) {
    let mut child = Command::new(TIDINGS)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tidings serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a first line").expect("readable");
    let url = first.split_whitespace().find(|w| w.starts_with("ws://")).expect("the address").to_owned();
    // The rest of the greeting is read by a thread, so that the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Serving(child), url)
}

fn token(config: &Path, dir: &Path, user: &str, roles: &[&str]) -> String {
    let mut command = Command::new(TIDINGS);
    command.args(["token", "--user", user, "--config"]).arg(config).arg("--data-dir").arg(dir.join("data"));
    for role in roles {
        command.args(["--role", role]);
    }
    let output = command.output().expect("tidings token runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

/// Sends one request as JSON, with a requestId of its own, and returns the reply's type and payload.
async fn send(client: &Client, ty: &str, payload: Value) -> (String, Value) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let request_id = format!("r{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let text = json!({ "type": ty, "timestamp": 1764000000000_u64, "requestId": request_id, "payload": payload });
    let reply = client.request_text(&request_id, text.to_string()).await.expect("a reply");
    let reply: Value = serde_json::from_str(&tidings_protocol::encode(&reply)).expect("json");
    (reply["type"].as_str().unwrap_or_default().to_owned(), reply["payload"].clone())
}

#[test]
fn the_example_of_docs_resource_types_serves_its_types_as_the_page_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_example(dir.path());
    let (_serving, url) = serve(dir.path(), &config);
    let (ann, agent, manager) = (
        token(&config, dir.path(), "ann", &[]),
        token(&config, dir.path(), "ivy", &["agent"]),
        token(&config, dir.path(), "max", &["manager"]),
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (ann_client, mut ann_pushes, _) = Client::connect(&url).await.expect("connect");
        ann_client.auth(&ann).await.expect("ann signs in");
        // A ticket: its defaults filled, its id of the type's prefix.
        let ticket = json!({ "title": "Cannot sign in", "channel": "chat", "customer": { "region": "eu" } });
        let (kind, created) = send(&ann_client, "create", json!({ "resourceType": "ticket", "data": ticket })).await;
        assert_eq!(kind, "create", "{created}");
        let id = created["id"].as_str().expect("an id").to_owned();
        assert!(id.starts_with("TKT-"), "{id}");
        assert_eq!((&created["data"]["status"], &created["data"]["priority"]), (&json!("open"), &json!(3)));
        assert_eq!(created["data"]["escalated"], false);
        // Only agents change the status; the owner hears of it.
        let patch = json!({ "resourceType": "ticket", "id": id, "patch": { "status": "solved" } });
        let (kind, refused) = send(&ann_client, "update", patch.clone()).await;
        assert_eq!((kind.as_str(), refused["code"].as_str()), ("error", Some("FORBIDDEN")), "{refused}");
        let (agent_client, _agent_pushes, _) = Client::connect(&url).await.expect("connect");
        agent_client.auth(&agent).await.expect("the agent signs in");
        let (kind, solved) = send(&agent_client, "update", patch).await;
        assert_eq!((kind.as_str(), &solved["data"]["status"]), ("update", &json!("solved")), "{solved}");
        loop {
            match ann_pushes.next_within(std::time::Duration::from_secs(10)).await {
                Some(Push::Message(message)) => {
                    if let tidings_protocol::ServerMessage::Notification(notification) = message.message {
                        assert_eq!(notification.data["id"], json!(id));
                        break;
                    }
                }
                other => panic!("expected the owner's notification, got {other:?}"),
            }
        }
        // The channel is read-only after create.
        let patch = json!({ "resourceType": "ticket", "id": id, "patch": { "channel": "email" } });
        let (kind, _) = send(&ann_client, "update", patch).await;
        assert_eq!(kind, "error");
        // Projects, whose schema is in its own file: managers create them, anyone signed in reads them.
        let project = json!({ "resourceType": "project", "data": { "name": "Launch" } });
        let (kind, refused) = send(&ann_client, "create", project.clone()).await;
        assert_eq!((kind.as_str(), refused["code"].as_str()), ("error", Some("FORBIDDEN")), "{refused}");
        let (manager_client, _manager_pushes, _) = Client::connect(&url).await.expect("connect");
        manager_client.auth(&manager).await.expect("the manager signs in");
        let (kind, created) = send(&manager_client, "create", project).await;
        assert_eq!((kind.as_str(), &created["data"]["members"]), ("create", &json!([])), "{created}");
        let bad = json!({ "resourceType": "project", "data": { "name": "" } });
        let (_, refused) = send(&manager_client, "create", bad).await;
        assert_eq!(refused["details"]["errors"][0]["pointer"], "/payload/data/name", "{refused}");
        // The order is still served, as declared again.
        let order = json!({ "productId": "P1", "quantity": 1, "totalAmount": 5 });
        let (kind, reply) = send(&ann_client, "create", json!({ "resourceType": "order", "data": order })).await;
        assert_eq!(kind, "create", "{reply}");
    });
}

/// `tidings types` on the example, as the page says: each type as sent and as created, and the map of them all.
#[test]
fn the_example_becomes_typescript_types() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_example(dir.path());
    let out = dir.path().join("tidings-types.ts");
    let status = Command::new(TIDINGS)
        .args(["types", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("tidings types runs");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).expect("the module");
    for line in [
        "export interface Ticket {",
        "  channel: \"email\" | \"chat\" | \"phone\";",
        "export interface TicketCreate {",
        "  ticket: { data: Ticket; create: TicketCreate };",
        "  project: { data: Project; create: ProjectCreate };",
        "  order: { data: Order; create: OrderCreate };",
    ] {
        assert!(text.contains(line), "{line:?} is missing from:\n{text}");
    }
    let create = text.split("export interface TicketCreate").nth(1).expect("the create form");
    assert!(!create.split("export").next().unwrap_or_default().contains("escalated"), "server-set: {text}");
    // A config the server would refuse gets no types.
    std::fs::write(dir.path().join("bad.toml"), "[[resource_types]]\nname = \"Bad Name\"\nid_prefix = \"B\"\n")
        .expect("a bad config");
    let refused = Command::new(TIDINGS)
        .args(["types", "--config"])
        .arg(dir.path().join("bad.toml"))
        .output()
        .expect("tidings types runs");
    assert!(!refused.status.success() && refused.stdout.is_empty(), "{refused:?}");
}
