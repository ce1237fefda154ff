//! A resource's `data`: schema defaults, validation with every bad field named, JSON merge patches, and the
//! digest that tells two creates' content apart.

use serde_json::{Map, Value};
use tidings_protocol::FieldError;

use super::types::ResourceTypeDef;

/// Fills missing fields with their schema `default`, at the top level and inside objects that are present.
pub fn apply_defaults(schema: &Value, data: &mut Map<String, Value>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
    for (field, field_schema) in properties {
        match data.get_mut(field) {
            None => {
                if let Some(default) = field_schema.get("default") {
                    data.insert(field.clone(), default.clone());
                }
            }
            Some(Value::Object(inner)) => apply_defaults(field_schema, inner),
            Some(_) => {}
        }
    }
}

/// Every way `data` breaks the type's schema, with pointers under `prefix` (such as `/data`).
pub fn validate(def: &ResourceTypeDef, data: &Map<String, Value>, prefix: &str) -> Vec<FieldError> {
    let instance = Value::Object(data.clone());
    let mut errors = tidings_protocol::schema::validation_errors(&def.validator, &instance, prefix);
    nul_characters(&instance, prefix, &mut errors);
    unsafe_integers(&instance, prefix, &mut errors);
    errors
}

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Whole numbers beyond 2^53 - 1: refused, since a browser would read them as another number (the protocol
/// promises that every integer on the wire fits), and a schema's `integer` accepts 1.8e19 as whole.
fn unsafe_integers(value: &Value, pointer: &str, errors: &mut Vec<FieldError>) {
    match value {
        Value::Number(n) => {
            let whole = n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0);
            if whole && n.as_f64().is_some_and(|f| f.abs() > MAX_SAFE_INTEGER) {
                errors.push(FieldError::new(pointer, "must be a whole number between -(2^53-1) and 2^53-1"));
            }
        }
        Value::Array(items) => {
            for (n, item) in items.iter().enumerate() {
                unsafe_integers(item, &format!("{pointer}/{n}"), errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                unsafe_integers(item, &format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1")), errors);
            }
        }
        _ => {}
    }
}

/// NUL characters in strings or keys: refused everywhere, since PostgreSQL cannot store them in JSONB and the
/// two backends must accept the same data.
fn nul_characters(value: &Value, pointer: &str, errors: &mut Vec<FieldError>) {
    const REASON: &str = "must not contain the NUL character (U+0000)";
    match value {
        Value::String(s) if s.contains('\0') => errors.push(FieldError::new(pointer, REASON)),
        Value::Array(items) => {
            for (n, item) in items.iter().enumerate() {
                nul_characters(item, &format!("{pointer}/{n}"), errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let at = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                if key.contains('\0') {
                    errors.push(FieldError::new(at.clone(), REASON));
                }
                nul_characters(item, &at, errors);
            }
        }
        _ => {}
    }
}

/// Applies a JSON merge patch (RFC 7396) to `data` and returns the result.
pub fn merge(data: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
    let mut target = Value::Object(data.clone());
    json_patch::merge(&mut target, &Value::Object(patch.clone()));
    match target {
        Value::Object(map) => map,
        // A merge of an object into an object is an object.
        _ => Map::new(),
    }
}

/// A stable digest of a create's content (FNV-1a over its canonical JSON), for idempotency keys.
pub fn fingerprint(resource_type: &str, data: &Map<String, Value>) -> String {
    fn canonical(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for key in keys {
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    canonical(&map[key], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                items.iter().for_each(|item| {
                    canonical(item, out);
                    out.push(',');
                });
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut text = String::from(resource_type);
    text.push('\n');
    canonical(&Value::Object(data.clone()), &mut text);
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn defaults_fill_only_what_is_missing() {
        let schema = json!({"properties": {
            "status": {"default": "pending"},
            "quantity": {"default": 1},
            "shipping": {"properties": {"speed": {"default": "normal"}}}
        }});
        let mut data = object(json!({"quantity": 3, "shipping": {}}));
        apply_defaults(&schema, &mut data);
        assert_eq!(Value::Object(data), json!({"quantity": 3, "status": "pending", "shipping": {"speed": "normal"}}));
    }

    #[test]
    fn nul_characters_are_found_wherever_they_are() {
        let mut errors = Vec::new();
        nul_characters(&json!({"a": "x\u{0}y", "b": [1, "\u{0}"], "c\u{0}": 1, "d": "ok"}), "/data", &mut errors);
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/data/a", "/data/b/1", "/data/c\u{0}"]);
    }

    #[test]
    fn merge_patches_set_replace_and_remove() {
        let data = object(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}));
        let patch = object(json!({"a": 10, "b": {"c": null}, "e": null, "f": [1]}));
        assert_eq!(Value::Object(merge(&data, &patch)), json!({"a": 10, "b": {"d": 3}, "f": [1]}));
    }

    #[test]
    fn fingerprints_ignore_key_order_and_tell_content_apart() {
        let a = json!({"b": 1, "a": {"y": 2, "x": [1, 2]}});
        let b = json!({"a": {"x": [1, 2], "y": 2}, "b": 1});
        let c = json!({"a": {"x": [2, 1], "y": 2}, "b": 1});
        let fp = |v: &Value| fingerprint("order", v.as_object().expect("object"));
        assert_eq!(fp(&a), fp(&b));
        assert_ne!(fp(&a), fp(&c));
        assert_ne!(fp(&a), fingerprint("invoice", a.as_object().expect("object")));
    }
}
