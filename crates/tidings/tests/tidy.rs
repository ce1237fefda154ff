//! Tidy: the house rules of ARCHITECTURE.md that a machine can check, so that they stay true without a reviewer.
//!
//! - Every source file opens with a line saying what it is for: `//!` in Rust, a `//` or `/*` comment in
//!   TypeScript and JavaScript, a `#` comment (or a docstring) in Python and shell scripts, after any `#!` line.
//! - No hand-written source file passes 600 lines: past that, one reader cannot hold it; split it by job.
//! - Every path ARCHITECTURE.md names exists, so the map cannot drift from the code.
//! - The server's settings (`config/mod.rs`) are the bottom of its house: they name nothing else of the crate.
//!
//! The files are the ones git knows (tracked, or new and not ignored), as in the work tree.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The most lines a hand-written source file may have.
const MAX_LINES: usize = 600;

/// Files that tools write, which no one reads line by line: exempt from the opening line and the length rule.
const GENERATED: &[&str] = &["clients/js/src/generated.ts", "clients/js/dist/tidings.js"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// The files git knows in the work tree, relative to the root.
fn files(root: &Path) -> Vec<String> {
    let output = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard", "-z"])
        .current_dir(root)
        .output()
        .expect("git runs (the tidy test reads the file list from git)");
    assert!(output.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .expect("file names are UTF-8")
        .split('\0')
        .filter(|name| !name.is_empty() && root.join(name).is_file())
        .map(str::to_owned)
        .collect()
}

/// What a file's opening line must look like, by its kind; `None` for a file that is not source.
fn opening_rule(path: &str, text: &str) -> Option<fn(&str) -> bool> {
    let extension = Path::new(path).extension().and_then(|e| e.to_str()).unwrap_or("");
    match extension {
        "rs" => Some(|line| line.starts_with("//!")),
        "ts" | "tsx" | "mjs" | "js" | "cjs" => Some(|line| line.starts_with("//") || line.starts_with("/*")),
        // A script without an extension is one that starts with `#!` (in shell or in Python).
        "py" | "sh" => Some(|line| line.starts_with('#') || line.starts_with("\"\"\"")),
        "" if text.starts_with("#!") => Some(|line| line.starts_with('#') || line.starts_with("\"\"\"")),
        _ => None,
    }
}

/// The first line that is not a `#!` line.
fn opening_line(text: &str) -> &str {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    if first.starts_with("#!") {
        lines.next().unwrap_or("")
    } else {
        first
    }
}

#[test]
fn every_source_file_says_what_it_is_for_and_fits_one_reader() {
    let root = root();
    let mut silent = Vec::new();
    let mut long = Vec::new();
    for path in files(&root) {
        if GENERATED.contains(&path.as_str()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&path)) else { continue };
        let Some(rule) = opening_rule(&path, &text) else { continue };
        if !rule(opening_line(&text)) {
            silent.push(path.clone());
        }
        let lines = text.lines().count();
        if lines > MAX_LINES {
            long.push(format!("{path} ({lines} lines)"));
        }
    }
    assert!(silent.is_empty(), "these files do not open with a line saying what they are for: {silent:#?}");
    assert!(long.is_empty(), "these files pass {MAX_LINES} lines; split them by job: {long:#?}");
}

#[test]
fn the_settings_name_nothing_above_them() {
    let text = std::fs::read_to_string(root().join("crates/tidings-server/src/config/mod.rs")).expect("config/mod.rs");
    // Its own unit tests (after `#[cfg(test)]`) may reach their module with `super::`.
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let upward: Vec<&str> = code.lines().filter(|line| line.contains("crate::") || line.contains("super::")).collect();
    assert!(upward.is_empty(), "config/mod.rs must not name the rest of the crate, which reads it: {upward:#?}");
}

/// The spans of ARCHITECTURE.md in backticks that name files or folders of the repository, each with the folder
/// of the section it is in (a `###` heading that names a folder), against which a short path is read.
fn named_paths(map: &str) -> Vec<(String, Option<String>)> {
    let mut section = None;
    let mut paths = Vec::new();
    for line in map.lines() {
        if line.starts_with('#') {
            section = line.split('`').nth(1).filter(|s| s.contains('/')).map(|s| s.trim_end_matches('/').to_owned());
        }
        for (n, span) in line.split('`').enumerate() {
            if n % 2 == 1 && looks_like_a_path(span) {
                paths.push((span.to_owned(), section.clone()));
            }
        }
    }
    paths
}

/// Whether a code span is a path in the repository rather than a URL, a setting, a command or a name.
fn looks_like_a_path(span: &str) -> bool {
    const EXTENSIONS: &[&str] =
        &[".rs", ".ts", ".mjs", ".js", ".md", ".py", ".toml", ".yaml", ".json", ".html", ".css", ".lock"];
    let plain = !span.is_empty()
        && !span.starts_with('/')
        && !span.contains("://")
        && span.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    plain && (span.contains('/') || EXTENSIONS.iter().any(|e| span.ends_with(e)))
}

#[test]
fn every_path_architecture_md_names_exists() {
    let root = root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let known = files(&root);
    let mut missing = Vec::new();
    let paths = named_paths(&map);
    assert!(paths.len() > 50, "the map names only {} paths: is the parsing right?", paths.len());
    for (path, section) in paths {
        let path = path.trim_end_matches('/');
        // A path is read from the root, then from its section's folder and that folder's src/; a short path may
        // also be the end of any file's path (or folder's) in its section, as in a list of a module's files.
        let bases: Vec<PathBuf> = match &section {
            Some(dir) => vec![root.clone(), root.join(dir), root.join(dir).join("src")],
            None => vec![root.clone()],
        };
        let found = bases.iter().any(|base| base.join(path).exists())
            || known.iter().any(|file| {
                let within = section.as_deref().is_none_or(|dir| file.starts_with(&format!("{dir}/")));
                within && (file.ends_with(&format!("/{path}")) || file.contains(&format!("/{path}/")))
            });
        if !found {
            missing.push(match section {
                Some(dir) => format!("{path} (in {dir})"),
                None => path.to_owned(),
            });
        }
    }
    assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist: {missing:#?}");
}

#[test]
fn the_path_reader_tells_paths_from_other_spans() {
    for path in ["crates/tidings-server", "session/mod.rs", "ARCHITECTURE.md", "schema/", "relay.rs"] {
        assert!(looks_like_a_path(path), "{path}");
    }
    for other in ["/ws", "storage.url", "TIDINGS_*", "redis://host", "Session", "order:ORD-1", "tidings serve"] {
        assert!(!looks_like_a_path(other), "{other}");
    }
}
