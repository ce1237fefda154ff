//! Runs the shared protocol vectors (protocol/vectors/*.json) through the decoder and the JSON Schemas.
//!
//! Every case must decode to its expected outcome; every valid case must also survive encode-then-decode and, when
//! given as a message, satisfy its committed schema; every case the decoder rejects for its shape must be rejected
//! by the schema too.
//! The TypeScript SDK runs the same files.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use tidings_protocol::{
    decode_client, decode_server, encode, schema, DecodeError, Envelope, ErrorCode, MessageType, ServerMessage, Side,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorFile {
    #[allow(dead_code)]
    description: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    side: String,
    /// The frame as a JSON value, sent as its compact encoding...
    #[serde(default)]
    message: Option<Value>,
    /// ...or the exact text of the frame, for inputs that are not JSON or that the decoder accepts beyond the schema.
    #[serde(default)]
    text: Option<String>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expect {
    /// The decoded message type, for valid messages.
    #[serde(rename = "type")]
    ty: Option<String>,
    /// The timestamp after normalization to milliseconds.
    timestamp: Option<u64>,
    /// The error code the decoder answers with, for invalid messages.
    error: Option<String>,
    /// Every pointer of `details.errors`, in any order; checked only when given.
    pointers: Option<Vec<String>>,
    /// The requestId the decoder keeps (valid) or echoes (invalid); `null` means none.
    #[serde(default, deserialize_with = "explicit")]
    request_id: Option<Option<String>>,
    /// The error code inside a decoded `error` or `auth_failed` payload.
    payload_code: Option<String>,
}

fn explicit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protocol/vectors")
}

fn load() -> Vec<(String, Case)> {
    let mut cases = Vec::new();
    let mut paths: Vec<PathBuf> = fs::read_dir(vector_dir())
        .expect("protocol/vectors exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = fs::read_to_string(&path).expect("readable vector file");
        let file: VectorFile =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not a vector file: {e}", path.display()));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        cases.extend(file.cases.into_iter().map(|c| (name.clone(), c)));
    }
    cases
}

/// What one decode produced, side-independent.
struct Outcome {
    ty: MessageType,
    timestamp: u64,
    request_id: Option<String>,
    payload_code: Option<ErrorCode>,
    reencoded: String,
}

fn run(side: Side, text: &str) -> Result<Outcome, DecodeError> {
    fn outcome<M: tidings_protocol::Message>(env: Envelope<M>, payload_code: Option<ErrorCode>) -> Outcome {
        Outcome {
            ty: env.message.message_type(),
            timestamp: env.timestamp,
            request_id: env.request_id.as_ref().map(|r| r.as_str().to_owned()),
            payload_code,
            reencoded: encode(&env),
        }
    }
    match side {
        Side::Client => decode_client(text).map(|env| outcome(env, None)),
        Side::Server => decode_server(text).map(|env| {
            let code = match &env.message {
                ServerMessage::Error(e) | ServerMessage::AuthFailed(e) => Some(e.code),
                _ => None,
            };
            outcome(env, code)
        }),
    }
}

fn schema_accepts(side: Side, message: &Value) -> Option<bool> {
    let ty = MessageType::parse(message.get("type")?.as_str()?)?;
    let schema = schema::message_schema(side, ty)?;
    let validator = jsonschema::draft7::new(&schema).expect("generated schemas compile");
    Some(validator.is_valid(message))
}

fn check(file: &str, case: &Case) -> Result<(), String> {
    check_case(case).map_err(|e| format!("{file}: {}: {e}", case.name))
}

/// Checks one case; the early returns are why the file and case name are added by [`check`].
fn check_case(case: &Case) -> Result<(), String> {
    let side = match case.side.as_str() {
        "client" => Side::Client,
        "server" => Side::Server,
        other => return Err(format!("side must be client or server, not {other}")),
    };
    let text = match (&case.message, &case.text) {
        (Some(message), None) => serde_json::to_string(message).map_err(|e| e.to_string())?,
        (None, Some(text)) => text.clone(),
        _ => return Err("a case has exactly one of message and text".to_owned()),
    };
    let expect = &case.expect;
    match (run(side, &text), &expect.ty, &expect.error) {
        (Ok(got), Some(ty), None) => {
            if got.ty.as_str() != ty {
                return Err(format!("decoded as {} instead of {ty}", got.ty));
            }
            if let Some(ts) = expect.timestamp.filter(|ts| *ts != got.timestamp) {
                return Err(format!("timestamp {} instead of {ts}", got.timestamp));
            }
            if let Some(id) = expect.request_id.as_ref().filter(|id| **id != got.request_id) {
                return Err(format!("requestId {:?} instead of {id:?}", got.request_id));
            }
            let want_code = expect.payload_code.as_deref();
            if want_code != got.payload_code.map(|c| c.as_str()) && want_code.is_some() {
                return Err(format!("payload code {:?} instead of {want_code:?}", got.payload_code));
            }
            // A valid case given as text is one the decoder accepts beyond its schema (a client disconnect with a
            // bad reason), so only a case given as a message is checked against the schema.
            if let Some(message) = &case.message {
                if schema_accepts(side, message) != Some(true) {
                    return Err("the decoder accepts it but its schema does not".to_owned());
                }
            }
            // Encoding what was decoded must give a message that decodes to the same thing.
            let again = run(side, &got.reencoded).map_err(|e| format!("re-encoded message fails: {e}"))?;
            if again.reencoded != got.reencoded {
                return Err(format!("encode is not stable: {} then {}", got.reencoded, again.reencoded));
            }
            Ok(())
        }
        (Err(got), None, Some(code)) => {
            if got.error.code.as_str() != code {
                return Err(format!("error {} ({}) instead of {code}", got.error.code, got.error.message));
            }
            if let Some(pointers) = &expect.pointers {
                let want: BTreeSet<&str> = pointers.iter().map(String::as_str).collect();
                let errors = got.error.field_errors();
                let have: BTreeSet<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
                if want != have {
                    return Err(format!("pointers {have:?} instead of {want:?}: {errors:?}"));
                }
            }
            let echoed = got.request_id.as_ref().map(|r| r.as_str().to_owned());
            if let Some(id) = expect.request_id.as_ref().filter(|id| **id != echoed) {
                return Err(format!("echoed requestId {echoed:?} instead of {id:?}"));
            }
            // Shape errors must be schema errors too; UNSUPPORTED_VERSION is a rule beyond shapes.
            let shape_error = matches!(got.error.code, ErrorCode::InvalidMessage | ErrorCode::InvalidParams);
            if let (true, Some(message)) = (shape_error, &case.message) {
                if schema_accepts(side, message) == Some(true) {
                    return Err("the decoder rejects it but its schema accepts it".to_owned());
                }
            }
            Ok(())
        }
        (Ok(got), _, Some(code)) => Err(format!("decoded as {} but {code} was expected", got.ty)),
        (Err(got), Some(ty), _) => {
            Err(format!("rejected with {} ({}) but {ty} was expected", got.error.code, got.error.message))
        }
        _ => Err("expect has exactly one of type and error".to_owned()),
    }
}

#[test]
fn every_vector_decodes_as_expected() {
    let cases = load();
    let failures: Vec<String> = cases.iter().filter_map(|(file, case)| check(file, case).err()).collect();
    assert!(failures.is_empty(), "{} of {} vectors failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn vectors_cover_every_type_and_every_error_code() {
    let cases = load();
    // The issue asked for 60; the floor sits near the real count so that vectors are not lost unnoticed.
    assert!(cases.len() >= 240, "only {} vectors", cases.len());
    let names: BTreeSet<&str> = cases.iter().map(|(_, c)| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "vector names must be unique");

    for side in [Side::Client, Side::Server] {
        for ty in MessageType::ALL.into_iter().filter(|t| t.sent_by(side)) {
            let covered =
                cases.iter().any(|(_, c)| c.side == side.as_str() && c.expect.ty.as_deref() == Some(ty.as_str()));
            assert!(covered, "no valid {} vector for {ty}", side.as_str());
        }
    }
    for code in ErrorCode::ALL {
        let covered = cases.iter().any(|(_, c)| {
            c.expect.error.as_deref() == Some(code.as_str()) || c.expect.payload_code.as_deref() == Some(code.as_str())
        });
        assert!(covered, "no vector for {code}");
    }
}
