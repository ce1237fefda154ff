//! JSON merge patches (RFC 7396) as `update` applies them, on arbitrary documents and patches: the result is what
//! the RFC says, patching twice changes nothing more, and validating the result against the `order` schema
//! never panics.
//!
//! The input is two JSON objects on two lines: the stored data, then the patch.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tidings_server::resources::data::{merge, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((stored, patch)) = text.split_once('\n') else { return };
    let (Ok(Value::Object(stored)), Ok(Value::Object(patch))) =
        (serde_json::from_str::<Value>(stored), serde_json::from_str::<Value>(patch))
    else {
        return;
    };
    let merged = merge(&stored, &patch);
    check(&stored, &patch, &merged);
    assert_eq!(merge(&merged, &patch), merged, "a merge patch applied twice changed the result again");
    let order = tidings_fuzz::shared().resources.types().get("order").expect("the order type");
    let _ = validate(order, &merged, "/payload/data");
});

/// RFC 7396, section 2, as properties of the result: a member the patch sets to null is gone, an object member
/// merges recursively, any other member replaces, and members the patch does not name are kept.
fn check(stored: &Map<String, Value>, patch: &Map<String, Value>, merged: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => assert!(!merged.contains_key(key), "{key} was patched to null but is still there"),
            Value::Object(inner) => {
                let Some(Value::Object(result)) = merged.get(key) else { panic!("{key} should be an object") };
                let empty = Map::new();
                let before = match stored.get(key) {
                    Some(Value::Object(before)) => before,
                    _ => &empty,
                };
                check(before, inner, result);
            }
            other => assert_eq!(merged.get(key), Some(other), "{key} was not replaced"),
        }
    }
    for (key, value) in stored {
        if !patch.contains_key(key) {
            assert_eq!(merged.get(key), Some(value), "{key} changed though the patch does not name it");
        }
    }
    for key in merged.keys() {
        assert!(stored.contains_key(key) || patch.contains_key(key), "{key} came from nowhere");
    }
}
