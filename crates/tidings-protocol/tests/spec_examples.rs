//! Every JSON example in docs/protocol.md must be a valid message: the spec may not show what it forbids.

use std::path::Path;

use tidings_protocol::{decode_client, decode_server, MessageType, Side};

fn examples() -> Vec<String> {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
    let text = std::fs::read_to_string(spec).expect("docs/protocol.md exists");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```json") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_example_in_the_spec_decodes() {
    let examples = examples();
    assert!(examples.len() >= 30, "only {} JSON examples found in docs/protocol.md", examples.len());
    let mut failures = Vec::new();
    for example in &examples {
        // An example is a message of one side or the other; the type decides which when only one sends it.
        let as_client = decode_client(example);
        let as_server = decode_server(example);
        if let (Err(client), Err(server)) = (&as_client, &as_server) {
            failures.push(format!("{example}\n  as client message: {client}\n  as server message: {server}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} examples in docs/protocol.md are invalid:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_spec_shows_every_type_from_every_side_that_sends_it() {
    let examples = examples();
    let mut shown = std::collections::BTreeSet::new();
    for example in &examples {
        if let Ok(env) = decode_client(example) {
            shown.insert((Side::Client, env.message.message_type()));
        }
        if let Ok(env) = decode_server(example) {
            shown.insert((Side::Server, env.message.message_type()));
        }
    }
    for side in [Side::Client, Side::Server] {
        for ty in MessageType::ALL.into_iter().filter(|t| t.sent_by(side)) {
            assert!(
                shown.contains(&(side, ty)),
                "docs/protocol.md has no example of {ty} sent by the {}",
                side.as_str()
            );
        }
    }
}
