//! JSON Schemas of every message, generated from the Rust types, and the validator that lists every bad field.
//!
//! The files under schema/ are [`files`] written to disk; a test fails when they are stale. The decoder uses
//! [`payload_errors`] only for payloads that failed to decode, to report all their faults at once.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::client::{
    Auth, Batch, Connect, Create, Delete, DisconnectRequest, Empty, Read, Subscribe, Unsubscribe, Update,
};
use crate::error::{ErrorCode, ErrorPayload, FieldError};
use crate::fields::{
    FieldName, FieldPath, OrderBy, ProtocolVersion, RequestId, ResourceId, ResourceType, Topic, MAX_SAFE_INTEGER,
};
use crate::message_type::{MessageType, Side};
use crate::push::{Event, Notification};
use crate::server::{
    AuthSuccess, BatchResult, Connected, Deleted, Disconnect, ReadResult, Resource, Subscribed, Unsubscribed,
};

/// The schema of one side's payload for one message type, with its definitions (JSON Schema draft-07).
pub fn payload_schema(side: Side, ty: MessageType) -> Option<Value> {
    use MessageType as T;
    let mut schema = match (side, ty) {
        (Side::Client, T::Connect) => generate::<Connect>(),
        (Side::Client, T::Disconnect) => generate::<DisconnectRequest>(),
        (Side::Client, T::Auth) => generate::<Auth>(),
        (Side::Client, T::Create) => generate::<Create>(),
        (Side::Client, T::Read) => with_read_rules(generate::<Read>()),
        (Side::Client, T::Update) => generate::<Update>(),
        (Side::Client, T::Delete) => generate::<Delete>(),
        (Side::Client, T::Subscribe) => with_subscribe_rules(generate::<Subscribe>()),
        (Side::Client, T::Unsubscribe) => generate::<Unsubscribe>(),
        (Side::Client, T::Batch) => with_batch_rules(generate::<Batch>()),
        (_, T::Ping | T::Pong) => generate::<Empty>(),
        (Side::Server, T::Connect) => generate::<Connected>(),
        (Side::Server, T::Disconnect) => generate::<Disconnect>(),
        (Side::Server, T::AuthSuccess) => generate::<AuthSuccess>(),
        (Side::Server, T::AuthFailed | T::Error) => generate::<ErrorPayload>(),
        (Side::Server, T::Create | T::Update) => generate::<Resource>(),
        (Side::Server, T::Read) => generate::<ReadResult>(),
        (Side::Server, T::Delete) => generate::<Deleted>(),
        (Side::Server, T::Subscribe) => generate::<Subscribed>(),
        (Side::Server, T::Unsubscribe) => generate::<Unsubscribed>(),
        (Side::Server, T::Notification) => generate::<Notification>(),
        (Side::Server, T::Event) => generate::<Event>(),
        (Side::Server, T::Batch) => generate::<BatchResult>(),
        _ => return None,
    };
    tidy(&mut schema);
    Some(schema)
}

/// The schema of a whole message, envelope and payload, as committed under schema/.
pub fn message_schema(side: Side, ty: MessageType) -> Option<Value> {
    let mut payload = payload_schema(side, ty)?;
    let object = payload.as_object_mut()?;
    let definitions = object.remove("definitions");
    object.remove("$schema");
    object.remove("title");
    let timestamp_doc = match side {
        Side::Client => "Unix time in milliseconds, or in seconds when below 10^11.",
        Side::Server => "Unix time in milliseconds when the server sent the message.",
    };
    let mut schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": format!("{ty} ({} to {})", side.as_str(), side.other().as_str()),
        "description": describe(side, ty),
        "type": "object",
        "required": ["type", "timestamp", "payload"],
        "properties": {
            "type": { "const": ty.as_str() },
            "timestamp": { "type": "number", "minimum": 0, "maximum": MAX_SAFE_INTEGER, "description": timestamp_doc },
            "requestId": {
                "type": "string",
                "pattern": RequestId::PATTERN,
                "description": "Correlates a reply with its request: 1 to 128 printable ASCII characters.",
            },
            "payload": payload,
        },
    });
    if let (Some(definitions), Some(root)) = (definitions, schema.as_object_mut()) {
        root.insert("definitions".to_owned(), definitions);
    }
    Some(schema)
}

/// Every schema file under schema/, by path relative to that folder.
pub fn files() -> BTreeMap<String, Value> {
    let mut files = BTreeMap::new();
    for side in [Side::Client, Side::Server] {
        for ty in MessageType::ALL.into_iter().filter(|ty| ty.sent_by(side)) {
            if let Some(schema) = message_schema(side, ty) {
                files.insert(format!("{}/{}.json", side.as_str(), ty.as_str()), schema);
            }
        }
    }
    files
}

/// The protocol's codes as data, for clients that cannot link this crate (the TypeScript SDK generates its
/// constants from it): every error code in the order of the spec's table, and every close code the server sends
/// with its reason and whether a client should reconnect after it. Written to protocol/codes.json.
pub fn codes() -> Value {
    let errors: Vec<Value> = crate::ErrorCode::ALL.iter().map(|code| json!(code.as_str())).collect();
    let closes: Vec<Value> = crate::CloseCode::ALL
        .iter()
        .map(|close| {
            json!({
                "name": format!("{close:?}"),
                "code": close.code(),
                "reason": close.reason(),
                "reconnect": close.reconnect(),
            })
        })
        .collect();
    json!({
        "description": "Generated from tidings-protocol (ErrorCode, CloseCode); never edited by hand.",
        "errorCodes": errors,
        "closeCodes": closes,
    })
}

/// One line on what a message is for, used as its schema's description.
pub fn describe(side: Side, ty: MessageType) -> &'static str {
    use MessageType as T;
    match (side, ty) {
        (Side::Client, T::Connect) => "Opens the session: the first message, naming the protocol version.",
        (Side::Client, T::Disconnect) => "Ends the session; the server closes with 1000 and sends no reply.",
        (Side::Client, T::Ping) => "Asks the server for a pong with the same requestId.",
        (Side::Client, T::Pong) => "Answers a server ping.",
        (Side::Client, T::Auth) => "Authenticates with a token, or re-authenticates with a fresh one.",
        (Side::Client, T::Create) => "Creates a resource of a type.",
        (Side::Client, T::Read) => "Reads one resource by id, or a page of the resources the user may see.",
        (Side::Client, T::Update) => "Changes a resource with a JSON merge patch.",
        (Side::Client, T::Delete) => "Deletes a resource.",
        (Side::Client, T::Subscribe) => "Subscribes to a topic, replaying events after `since` when given.",
        (Side::Client, T::Unsubscribe) => "Ends a subscription.",
        (Side::Client, T::Batch) => "Applies creates, updates and deletes together in one transaction, or none (1.2).",
        (Side::Server, T::Connect) => "The reply to connect: session id, heartbeat timing and limits.",
        (Side::Server, T::Disconnect) => "Sent before every close the server initiates: code, reason, reconnect.",
        (Side::Server, T::Ping) => "A server heartbeat; the client answers pong.",
        (Side::Server, T::Pong) => "The reply to a client ping, with its requestId.",
        (Side::Server, T::AuthSuccess) => "The reply to an auth whose token was accepted.",
        (Side::Server, T::AuthFailed) => "The reply to an auth whose token was rejected.",
        (Side::Server, T::Create) => "The reply to create: the new resource.",
        (Side::Server, T::Read) => "The reply to read: one resource, or a page of a list.",
        (Side::Server, T::Update) => "The reply to update: the resource after the change.",
        (Side::Server, T::Delete) => "The reply to delete.",
        (Side::Server, T::Subscribe) => "The reply to subscribe: subscription id, current seq, recovered.",
        (Side::Server, T::Unsubscribe) => "The reply to unsubscribe, or a push when the server ends a subscription.",
        (Side::Server, T::Notification) => "A notification for the user, pushed without a requestId.",
        (Side::Server, T::Event) => "A change to a resource, pushed through a subscription without a requestId.",
        (Side::Server, T::Error) => "The reply to a request that failed, or a push about the session.",
        (Side::Server, T::Batch) => "The reply to batch: what each operation did, in order.",
        _ => "Not sent by this side.",
    }
}

/// Every fault of a payload that failed to decode, with pointers from the message root (`/payload/...`).
pub(crate) fn payload_errors(side: Side, ty: MessageType, payload: &str) -> Vec<FieldError> {
    let instance: Value = match serde_json::from_str(payload) {
        Ok(value) => value,
        Err(e) => return vec![FieldError::new("/payload", format!("cannot be read: {e}"))],
    };
    let Some(validator) = validators().get(&(side, ty)) else {
        return Vec::new();
    };
    validation_errors(validator, &instance, "/payload")
}

/// Every fault of a query that serde refused, with pointers under `prefix`, as the decoder reports a payload's.
pub(crate) fn query_errors(instance: &Value, prefix: &str) -> Vec<FieldError> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| jsonschema::draft7::new(&generate::<crate::query::Query>()).ok());
    validator.as_ref().map(|v| validation_errors(v, instance, prefix)).unwrap_or_default()
}

/// Every fault `validator` finds in `instance`, as field errors whose pointers start with `prefix`, in the
/// spec's words ("is required", "must be at least 1"). The server uses it for resource data too.
pub fn validation_errors(validator: &jsonschema::Validator, instance: &Value, prefix: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for error in validator.iter_errors(instance) {
        collect(&error, prefix, &mut errors);
    }
    errors.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    errors.dedup();
    errors
}

/// Turns one violation into field errors. A failed `anyOf` (how optional and scalar fields are written)
/// is reported through the branch that explains it, not as "matches no branch".
fn collect(error: &jsonschema::ValidationError<'_>, prefix: &str, out: &mut Vec<FieldError>) {
    use jsonschema::error::ValidationErrorKind as K;
    let mut pointer = format!("{prefix}{}", error.instance_path().as_str());
    let branches = match error.kind() {
        K::AnyOf { context } | K::OneOfNotValid { context } => context,
        // In message schemas the `then` branches are the subscribe rule of `with_subscribe_rules` (under `allOf`)
        // and the read-by-id rule of `with_read_rules`; resource schemas (validated with another prefix) may have
        // their own.
        _ if prefix == "/payload" && error.schema_path().as_str().contains("/allOf/0/then/") => {
            return out.push(FieldError::new(pointer, "applies to a resource-type topic only"));
        }
        _ if prefix == "/payload" && error.schema_path().as_str().contains("/then/") => {
            return out.push(FieldError::new(pointer, "cannot be combined with id"));
        }
        // A query term has its field and one operator: the words for its shape are the query's own.
        K::AdditionalProperties { unexpected } if error.schema_path().as_str().contains("/Term/") => {
            let key = unexpected.first().map(String::as_str).unwrap_or_default();
            pointer.push('/');
            pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            return out.push(FieldError::new(
                pointer,
                "is not an operator: eq, ne, lt, lte, gt, gte, in, nin, exists, prefix or contains",
            ));
        }
        K::MinProperties { .. } | K::MaxProperties { .. } if error.schema_path().as_str().contains("/Term/") => {
            return out.push(FieldError::new(pointer, "must have a field and exactly one operator"));
        }
        kind => {
            let reason = reason(kind, &mut pointer);
            return out.push(FieldError::new(pointer, reason));
        }
    };
    // A branch that fails only on its type or constant (an optional field, a scalar, one value of an enum) does
    // not explain the fault: when every branch is such, the reason lists what the branches allow.
    let explains = |e: &jsonschema::ValidationError<'_>| !matches!(e.kind(), K::Type { .. } | K::Constant { .. });
    // Of the branches that explain, the one that least disputes the value's own shape: a query term with a bad
    // field is a term with a bad field, not an `and` that lacks its list.
    let own_level = |branch: &&Vec<jsonschema::ValidationError<'_>>| {
        branch.iter().filter(|e| e.instance_path() == error.instance_path()).count()
    };
    match branches.iter().filter(|branch| branch.iter().any(explains)).min_by_key(own_level) {
        Some(branch) => branch.iter().for_each(|e| collect(e, prefix, out)),
        None => {
            let (mut types, mut values) = (Vec::new(), Vec::new());
            for e in branches.iter().flatten() {
                match e.kind() {
                    K::Type { kind: jsonschema::error::TypeKind::Single(ty) } => types.push(article(&ty.to_string())),
                    K::Constant { expected_value } => values.push(expected_value.to_string()),
                    _ => {}
                }
            }
            let reason = if values.is_empty() {
                either(types).unwrap_or_else(|| "does not match any of the allowed forms".to_owned())
            } else {
                format!("must be one of {}", values.join(", "))
            };
            out.push(FieldError::new(pointer, reason));
        }
    }
}

/// "must be a string", "must be an integer or null", "must be null, a boolean, a number or a string".
fn either(mut types: Vec<String>) -> Option<String> {
    types.dedup();
    let last = types.pop()?;
    Some(if types.is_empty() { format!("must be {last}") } else { format!("must be {} or {last}", types.join(", ")) })
}

fn validators() -> &'static BTreeMap<(Side, MessageType), jsonschema::Validator> {
    static VALIDATORS: OnceLock<BTreeMap<(Side, MessageType), jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let mut validators = BTreeMap::new();
        for side in [Side::Client, Side::Server] {
            for ty in MessageType::ALL {
                let Some(schema) = payload_schema(side, ty) else { continue };
                // The schemas are generated from this crate's types; the schema test proves they compile.
                if let Ok(validator) = jsonschema::draft7::new(&schema) {
                    validators.insert((side, ty), validator);
                }
            }
        }
        validators
    })
}

/// A short reason for one schema violation; never echoes the value, which may be huge.
fn reason(kind: &jsonschema::error::ValidationErrorKind, pointer: &mut String) -> String {
    use jsonschema::error::{TypeKind, ValidationErrorKind as K};
    match kind {
        K::Required { property } => {
            pointer.push('/');
            pointer.push_str(&property.as_str().unwrap_or_default().replace('~', "~0").replace('/', "~1"));
            "is required".to_owned()
        }
        K::Type { kind: TypeKind::Single(ty) } => format!("must be {}", article(&ty.to_string())),
        K::Type { kind: TypeKind::Multiple(types) } => {
            either(types.iter().map(|t| article(&t.to_string())).collect()).unwrap_or_default()
        }
        K::Minimum { limit } => format!("must be at least {limit}"),
        K::Maximum { limit } => format!("must be at most {limit}"),
        K::ExclusiveMinimum { limit } => format!("must be greater than {limit}"),
        K::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
        K::MinLength { limit } if *limit == 1 => "must not be empty".to_owned(),
        K::MinLength { limit } => format!("must be at least {limit} characters"),
        K::MaxLength { limit } => format!("must be at most {limit} characters"),
        K::MaxProperties { limit } => format!("must have at most {limit} fields"),
        K::MaxItems { limit } => format!("must have at most {limit} items"),
        K::Pattern { pattern } => pattern_reason(pattern),
        K::Enum { options } => format!("must be one of {options}"),
        K::Constant { expected_value } => format!("must be {expected_value}"),
        // Only maps keyed by field names close their properties (list filters).
        K::AdditionalProperties { unexpected } => {
            let key = unexpected.first().map(String::as_str).unwrap_or_default();
            pointer.push('/');
            pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            FieldName::REASON.to_owned()
        }
        other => format!("is invalid ({})", other.keyword()),
    }
}

fn article(ty: &str) -> String {
    match ty {
        "object" | "array" | "integer" => format!("an {ty}"),
        "null" => "null".to_owned(),
        _ => format!("a {ty}"),
    }
}

/// The field types' own words for their patterns, so schema and decoder give the same reason.
fn pattern_reason(pattern: &str) -> String {
    let known = [
        (RequestId::PATTERN, RequestId::REASON),
        (ResourceType::PATTERN, ResourceType::REASON),
        (ResourceId::PATTERN, ResourceId::REASON),
        (FieldName::PATTERN, FieldName::REASON),
        (FieldPath::PATTERN, FieldPath::REASON),
        (OrderBy::PATTERN, OrderBy::REASON),
        (Topic::PATTERN, Topic::REASON),
        (ProtocolVersion::PATTERN, ProtocolVersion::REASON),
        (ErrorCode::PATTERN, ErrorCode::REASON),
    ];
    known
        .iter()
        .find(|(p, _)| *p == pattern)
        .map(|(_, reason)| (*reason).to_owned())
        .unwrap_or_else(|| format!("must match the pattern {pattern}"))
}

fn generate<T: JsonSchema>() -> Value {
    SchemaSettings::draft07().into_generator().into_root_schema_for::<T>().to_value()
}

/// A read by `id` takes none of the list fields; the decoder checks the same rule in `Read::check`.
fn with_read_rules(mut schema: Value) -> Value {
    if let Some(object) = schema.as_object_mut() {
        // `null` counts as absent, as it does for every optional field.
        let absent = json!({ "type": "null" });
        object.insert("if".to_owned(), json!({ "properties": { "id": { "type": "string" } }, "required": ["id"] }));
        object.insert(
            "then".to_owned(),
            json!({ "properties": {
                "filter": absent, "query": absent, "orderBy": absent, "limit": absent, "cursor": absent,
                "fields": absent, "count": absent
            } }),
        );
    }
    schema
}

/// A query and a snapshot go with a resource-type topic only; the decoder checks the same rule in
/// `Subscribe::check`.
fn with_subscribe_rules(mut schema: Value) -> Value {
    if let Some(object) = schema.as_object_mut() {
        // Not a type topic: the notifications topic, or one resource (`type:id`).
        let other_topic = json!({ "properties": { "topic": { "type": "string", "pattern": "^(notifications$|[^:]*:)" } },
                                  "required": ["topic"] });
        // A presence topic (1.2) is not a type topic either, but it has a snapshot: its members.
        let presence = json!({ "properties": { "topic": { "type": "string", "pattern": "^presence:" } },
                               "required": ["topic"] });
        let rule = json!({ "if": other_topic, "then": {
            "properties": { "query": { "type": "null" } },
            "if": presence,
            "else": { "properties": { "snapshot": { "enum": [false, null] } } }
        } });
        object.insert("allOf".to_owned(), json!([rule]));
    }
    schema
}

/// Adds to the `batch` schema what its type cannot say (at least one operation), and states an operation as a
/// choice by `op` (if `op` is "update", then an update) rather than the generated `oneOf`: a validator then
/// reports the faults of the operation that was meant, not of every other.
fn with_batch_rules(mut schema: Value) -> Value {
    if let Some(operations) = schema.pointer_mut("/properties/operations").and_then(Value::as_object_mut) {
        operations.insert("minItems".to_owned(), json!(1));
    }
    let Some(operation) = schema.pointer_mut("/definitions/Operation") else { return schema };
    let branches = operation.get("oneOf").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut ops = Vec::new();
    let mut rules = Vec::new();
    for branch in &branches {
        let (Some(op), Some(target)) = (branch.pointer("/properties/op/const"), branch.pointer("/allOf/0/$ref")) else {
            continue;
        };
        ops.push(op.clone());
        rules.push(json!({
            "if": { "properties": { "op": { "const": op } }, "required": ["op"] },
            "then": { "$ref": target }
        }));
    }
    let description = operation.get("description").cloned();
    *operation = json!({
        "type": "object",
        "required": ["op"],
        "properties": { "op": { "enum": ops } },
        "allOf": rules
    });
    if let (Some(description), Some(object)) = (description, operation.as_object_mut()) {
        object.insert("description".to_owned(), description);
    }
    schema
}

/// Makes generated schemas portable: Rust number formats (`uint64`, `double`, ...) are not JSON Schema formats
/// and strict validators such as Ajv reject them, so integer ones become plain bounds and float ones go.
fn tidy(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            tidy_integer_format(object);
            object.values_mut().for_each(tidy);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

fn tidy_integer_format(object: &mut Map<String, Value>) {
    let Some(format) = object.get("format").and_then(Value::as_str) else { return };
    let max = match format {
        "uint8" => u64::from(u8::MAX),
        "uint16" => u64::from(u16::MAX),
        "uint32" | "uint" => u64::from(u32::MAX),
        "uint64" => MAX_SAFE_INTEGER,
        // Rust's float formats say nothing JSON Schema does (a number is a number), and Ajv refuses them.
        "double" | "float" => {
            object.remove("format");
            return;
        }
        _ => return,
    };
    object.remove("format");
    object.entry("minimum").or_insert(json!(0));
    object.entry("maximum").or_insert(json!(max));
}
