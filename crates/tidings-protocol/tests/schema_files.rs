//! schema/ holds the JSON Schema of every message, and protocol/codes.json the error and close codes, all
//! generated from the Rust types; these tests keep them current.
//!
//! Run with `TIDINGS_BLESS=1` to rewrite the files after changing a type, and commit the result.

use std::fs;
use std::path::{Path, PathBuf};

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema")
}

fn render(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("a schema serializes");
    text.push('\n');
    text
}

#[test]
fn committed_schemas_match_the_rust_types() {
    let dir = schema_dir();
    let expected = tidings_protocol::schema::files();
    let bless = std::env::var_os("TIDINGS_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, schema) in &expected {
        let file = dir.join(path);
        let text = render(schema);
        if fs::read_to_string(&file).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        if bless {
            fs::create_dir_all(file.parent().expect("a schema file has a folder")).expect("create schema folder");
            fs::write(&file, text).expect("write schema file");
        } else {
            stale.push(path.clone());
        }
    }
    // A file nobody generates any more is stale too.
    for side in ["client", "server"] {
        for entry in fs::read_dir(dir.join(side)).into_iter().flatten().flatten() {
            let path = format!("{side}/{}", entry.file_name().to_string_lossy());
            if !expected.contains_key(&path) {
                if bless {
                    fs::remove_file(entry.path()).expect("remove stale schema");
                } else {
                    stale.push(path);
                }
            }
        }
    }
    assert!(stale.is_empty(), "schema/ is stale for {stale:?}: run `TIDINGS_BLESS=1 cargo test -p tidings-protocol --test schema_files` and commit");
}

#[test]
fn every_message_type_has_a_schema_for_each_side_that_sends_it() {
    let files = tidings_protocol::schema::files();
    // The 16 types of 1.0 (11 a client sends, 15 the server sends), and `batch` of 1.2 both ways.
    assert_eq!(files.keys().filter(|p| p.starts_with("client/")).count(), 12);
    assert_eq!(files.keys().filter(|p| p.starts_with("server/")).count(), 16);
    for ty in tidings_protocol::MessageType::ALL {
        assert!(files.keys().any(|p| p.ends_with(&format!("/{}.json", ty.as_str()))), "{ty} has no schema");
    }
}

#[test]
fn committed_codes_match_the_rust_enums() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protocol/codes.json");
    let text = render(&tidings_protocol::schema::codes());
    if fs::read_to_string(&file).ok().as_deref() == Some(text.as_str()) {
        return;
    }
    if std::env::var_os("TIDINGS_BLESS").is_some() {
        fs::write(&file, text).expect("write protocol/codes.json");
        return;
    }
    panic!("protocol/codes.json is stale: run `TIDINGS_BLESS=1 cargo test -p tidings-protocol --test schema_files` and commit");
}
