//! `tidings types`: TypeScript types of the configured resource types, from their JSON Schemas, for
//! `createClient<Types>()` of the TypeScript SDK (clients/js, "Typed resources").
//!
//! For each type it writes the data as the server sends it (`Order`: a field with a schema default is always
//! there; a field that a field rule hides from some users may be absent) and the data a `create` takes
//! (`OrderCreate`: a field with a default may be left out), and one `Types` map of them all. The schema keywords
//! that shape a TypeScript type are read (`type`, `properties`, `required`, `additionalProperties`, `items`,
//! `enum`, `const`, `anyOf`, `oneOf`, `allOf`, local `$ref`s, `description`); the rest (bounds, patterns,
//! formats) stay the server's to check, and a schema this cannot read becomes `unknown`, never a wrong type.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Map, Value};
use tidings_server::config::ResourceTypeConfig;

/// Arguments of `tidings types`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML config file whose resource types to describe; without one, the defaults and the environment.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where to write the TypeScript; without it, standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// How deep a schema's objects are followed before the rest is `unknown`.
const MAX_DEPTH: usize = 16;

/// How many `$ref`s one type follows before the rest is `unknown` (a schema may refer to itself).
const MAX_REFS: u32 = 64;

/// The schema a type is written from, for its `$ref`s, and how many more of them may be followed.
struct Cx<'a> {
    root: &'a Value,
    refs: std::cell::Cell<u32>,
}

/// Writes the types of the configured resource types.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = crate::serve::load(args.config.as_ref(), None, None)?;
    // Compiling refuses what the server would refuse, so types are never written for a config that cannot run.
    tidings_server::resources::ResourceTypes::compile(&config.resource_types)?;
    let text = typescript(&config.resource_types);
    match &args.out {
        Some(path) => std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// The TypeScript module for `types`.
pub fn typescript(types: &[ResourceTypeConfig]) -> String {
    let mut out = String::from(
        "// The resource types of a Tidings server, written by `tidings types` from their JSON Schemas: do not edit;\n\
         // run it again when the schemas change. Use: `createClient<Types>(...)`.\n",
    );
    let mut map =
        String::from("\n/** Every resource type of the server, by name: the type parameter of `createClient`. */\n");
    map.push_str("export interface Types {\n");
    for config in types {
        let name = pascal(&config.name);
        let root = &config.schema;
        let server_set: Vec<&str> = config.server_set.iter().map(String::as_str).collect();
        let hidden: Vec<&str> =
            config.field_rules.iter().filter(|(_, r)| r.read.is_some()).map(|(f, _)| f.as_str()).collect();
        let forms = [
            (name.clone(), Shape::Stored(&hidden), "data, as the server sends it"),
            (
                format!("{name}Create"),
                Shape::Create(&server_set),
                "data for a `create`: fields with a default may be left out",
            ),
        ];
        for (type_name, shape, what) in forms {
            let cx = Cx { root, refs: std::cell::Cell::new(MAX_REFS) };
            let _ = writeln!(out, "\n/** `{}` {what}. */", config.name);
            if root.get("properties").is_some() {
                let _ = writeln!(out, "export interface {type_name} {}", object(root, &cx, shape, 0));
            } else {
                let _ = writeln!(out, "export type {type_name} = {};", record(root, &cx, 0));
            }
        }
        // An ephemeral type's events carry no `seq` (docs/protocol.md, 8.8): the SDK types them so.
        let ephemeral = if config.ephemeral { "; ephemeral: true" } else { "" };
        let _ = writeln!(map, "  {}: {{ data: {name}; create: {name}Create{ephemeral} }};", key(&config.name));
    }
    map.push_str("}\n");
    out.push_str(&map);
    out
}

/// Which form of a type's top-level object is written.
#[derive(Clone, Copy)]
enum Shape<'a> {
    /// As sent: required and defaulted fields are there, except those a field rule may hide.
    Stored(&'a [&'a str]),
    /// As created: only required fields without a default must be given, and fields only the server sets are
    /// left out.
    Create(&'a [&'a str]),
}

/// The TypeScript of an object schema's properties (the top level takes `shape`; nested objects are as stored).
fn object(schema: &Value, cx: &Cx<'_>, shape: Shape<'_>, depth: usize) -> String {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return record(schema, cx, depth);
    };
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let indent = "  ".repeat(depth + 1);
    let mut text = String::from("{\n");
    for (field, property) in properties {
        if matches!(shape, Shape::Create(server_set) if depth == 0 && server_set.contains(&field.as_str())) {
            continue;
        }
        let present = match shape {
            Shape::Stored(hidden) => {
                (required.contains(&field.as_str()) || property.get("default").is_some())
                    && !(depth == 0 && hidden.contains(&field.as_str()))
            }
            Shape::Create(_) => required.contains(&field.as_str()) && property.get("default").is_none(),
        };
        if let Some(description) = property.get("description").and_then(Value::as_str) {
            let _ = writeln!(text, "{indent}/** {} */", description.replace("*/", "*\\/"));
        }
        let optional = if present { "" } else { "?" };
        let _ = writeln!(text, "{indent}{}{optional}: {};", key(field), ts(property, cx, depth + 1));
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        let _ = writeln!(text, "{indent}[field: string]: {};", ts(extra, cx, depth + 1));
    }
    let _ = write!(text, "{}}}", "  ".repeat(depth));
    text
}

/// An object without `properties`: a record of what `additionalProperties` allows.
fn record(schema: &Value, cx: &Cx<'_>, depth: usize) -> String {
    match schema.get("additionalProperties") {
        Some(Value::Bool(false)) => "Record<string, never>".to_owned(),
        Some(extra @ Value::Object(_)) => format!("Record<string, {}>", ts(extra, cx, depth + 1)),
        _ => "Record<string, unknown>".to_owned(),
    }
}

/// The TypeScript type of a schema.
fn ts(schema: &Value, cx: &Cx<'_>, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return "unknown".to_owned();
    }
    let Some(schema) = schema.as_object() else {
        return if schema == &Value::Bool(false) { "never".to_owned() } else { "unknown".to_owned() };
    };
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let left = cx.refs.get();
        return match target.strip_prefix('#').and_then(|pointer| cx.root.pointer(pointer)) {
            Some(found) if left > 0 => {
                cx.refs.set(left - 1);
                ts(found, cx, depth)
            }
            _ => "unknown".to_owned(),
        };
    }
    if let Some(value) = schema.get("const") {
        return literal(value);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return union(values.iter().map(literal));
    }
    for (keyword, joiner) in [("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")] {
        if let Some(parts) = schema.get(keyword).and_then(Value::as_array) {
            let parts: Vec<String> = parts.iter().map(|part| format!("({})", ts(part, cx, depth + 1))).collect();
            return if parts.is_empty() { "unknown".to_owned() } else { parts.join(joiner) };
        }
    }
    match schema.get("type") {
        Some(Value::String(ty)) => of_type(ty, schema, cx, depth),
        Some(Value::Array(types)) => {
            union(types.iter().filter_map(Value::as_str).map(|ty| of_type(ty, schema, cx, depth)))
        }
        _ if schema.contains_key("properties") => object(&Value::Object(schema.clone()), cx, Shape::Stored(&[]), depth),
        _ => "unknown".to_owned(),
    }
}

/// The TypeScript of one JSON type name, for `schema`.
fn of_type(ty: &str, schema: &Map<String, Value>, cx: &Cx<'_>, depth: usize) -> String {
    match ty {
        "string" => "string".to_owned(),
        "integer" | "number" => "number".to_owned(),
        "boolean" => "boolean".to_owned(),
        "null" => "null".to_owned(),
        "array" => match schema.get("items") {
            Some(items @ Value::Object(_)) => format!("Array<{}>", ts(items, cx, depth + 1)),
            _ => "unknown[]".to_owned(),
        },
        "object" => object(&Value::Object(schema.clone()), cx, Shape::Stored(&[]), depth),
        _ => "unknown".to_owned(),
    }
}

/// A JSON value as a TypeScript literal type (objects and arrays: `unknown`).
fn literal(value: &Value) -> String {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => value.to_string(),
        _ => "unknown".to_owned(),
    }
}

/// `a | b | c`, each once; `never` for none.
fn union(parts: impl Iterator<Item = String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for part in parts {
        if !seen.contains(&part) {
            seen.push(part);
        }
    }
    if seen.is_empty() {
        "never".to_owned()
    } else {
        seen.join(" | ")
    }
}

/// A property name as a TypeScript key: bare when it is an identifier, quoted otherwise.
fn key(name: &str) -> String {
    let identifier = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if identifier {
        name.to_owned()
    } else {
        Value::String(name.to_owned()).to_string()
    }
}

/// `order_line` as `OrderLine`.
fn pascal(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tidings_server::config::{default_types, FieldRulesConfig};

    use super::typescript;

    #[test]
    fn an_ephemeral_type_says_so_in_the_map() {
        let mut cursor = default_types().remove(0);
        cursor.name = "cursor".to_owned();
        cursor.ephemeral = true;
        let text = typescript(&[cursor]);
        assert!(text.contains("  cursor: { data: Cursor; create: CursorCreate; ephemeral: true };"), "{text}");
    }

    #[test]
    fn the_default_order_is_typed_as_sent_and_as_created() {
        let text = typescript(&default_types());
        let expected = "\n/** `order` data, as the server sends it. */\nexport interface Order {\n  productId: string;\n  quantity: number;\n  totalAmount: number;\n  status: \"pending\" | \"paid\" | \"shipped\" | \"cancelled\";\n}\n";
        assert!(text.contains(expected), "{text}");
        // On create, the status has a default and may be left out.
        assert!(text.contains("export interface OrderCreate {\n  productId: string;\n  quantity: number;\n  totalAmount: number;\n  status?: \"pending\""), "{text}");
        assert!(text.contains("export interface Types {\n  order: { data: Order; create: OrderCreate };\n}"), "{text}");
    }

    #[test]
    fn nested_objects_arrays_unions_references_and_hidden_fields_are_typed() {
        let mut types = default_types();
        let task = &mut types[0];
        task.name = "work_item".to_owned();
        task.schema = json!({
            "type": "object",
            "definitions": { "person": { "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] } },
            "properties": {
                "title": { "type": "string", "description": "What to do" },
                "assignee": { "$ref": "#/definitions/person" },
                "tags": { "type": "array", "items": { "type": "string" } },
                "due": { "type": ["string", "null"] },
                "cost": { "type": "number" },
                "meta": { "type": "object", "additionalProperties": { "type": "integer" } },
                "odd-name": { "const": 3 },
                "anything": {}
            },
            "required": ["title", "cost"]
        });
        task.field_rules
            .insert("cost".to_owned(), FieldRulesConfig { read: Some(vec![json!("role:admin")]), write: None });
        task.server_set = vec!["tags".to_owned()];
        let text = typescript(&types);
        for line in [
            "export interface WorkItem {",
            "  /** What to do */\n  title: string;",
            "  assignee?: {\n    name: string;\n  };",
            "  tags?: Array<string>;",
            "  due?: string | null;",
            "  cost?: number;",
            "  meta?: Record<string, number>;",
            "  \"odd-name\"?: 3;",
            "  anything?: unknown;",
            "  work_item: { data: WorkItem; create: WorkItemCreate };",
        ] {
            assert!(text.contains(line), "{line:?} is missing from:\n{text}");
        }
        assert!(text.contains("export interface WorkItemCreate {\n  /** What to do */\n  title: string;"), "{text}");
        assert!(text.contains("  cost: number;"), "a hidden field must still be given on create:\n{text}");
        let create = text.split("export interface WorkItemCreate").nth(1).expect("the create form");
        assert!(
            create.contains("due?:") && !create.contains("tags"),
            "a server-set field is no client's to send:\n{text}"
        );
    }
}
