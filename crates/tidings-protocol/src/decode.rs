//! Decoding one text frame into a typed message, or into the exact `error` the spec says it earns.
//!
//! The order of checks is the spec's ("Decoding", docs/protocol.md): JSON syntax, then the envelope (every
//! bad envelope field at once, INVALID_MESSAGE), then the type (UNSUPPORTED_TYPE), then the payload (every
//! bad payload field at once, INVALID_PARAMS), then the few rules that no field type can express.
//!
//! Valid messages take the fast path: serde straight into the typed payload. Only a payload that fails is
//! checked again against its JSON Schema, to list every bad field rather than the first.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::{ClientMessage, Empty};
use crate::envelope::{normalize_timestamp, Envelope};
use crate::error::{DecodeError, ErrorCode, ErrorPayload, FieldError};
use crate::fields::{RequestId, MAX_SAFE_INTEGER};
use crate::message_type::{MessageType, Side};
use crate::schema;
use crate::server::ServerMessage;
use crate::PROTOCOL_MAJOR;

/// Decodes a message sent by a client, as the server must.
pub fn decode_client(text: &str) -> Result<Envelope<ClientMessage>, DecodeError> {
    decode(text)
}

/// Decodes a message sent by the server, as a client must.
pub fn decode_server(text: &str) -> Result<Envelope<ServerMessage>, DecodeError> {
    decode(text)
}

/// The envelope with each field still raw, so that every field can be judged on its own.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "present")]
    ty: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    timestamp: Option<&'a RawValue>,
    #[serde(rename = "requestId", borrow, default, deserialize_with = "present")]
    request_id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
}

/// Keeps an explicit `null` apart from a missing field: `null` is present, and mistyped.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// One side's message enum: how its payloads decode, and the rules beyond field types.
trait Decode: Sized {
    const SIDE: Side;
    fn decode_payload(ty: MessageType, payload: &str) -> serde_json::Result<Self>;
    fn check(&self) -> Result<(), ErrorPayload>;
}

/// How deeply a message may nest objects and arrays: the envelope is level 1, its payload level 2.
const MAX_DEPTH: usize = 128;

/// The whitespace JSON allows around a value.
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

fn decode<M: Decode>(text: &str) -> Result<Envelope<M>, DecodeError> {
    let raw = read_envelope(text)?;

    let mut errors = Vec::new();
    let request_id = raw.request_id.and_then(|raw| {
        let id = string(raw).ok_or("must be a string").and_then(|s| RequestId::new(s).map_err(|_| RequestId::REASON));
        id.map_err(|reason| errors.push(FieldError::new("/requestId", reason))).ok()
    });
    let ty = match raw.ty {
        None => Err("is required"),
        Some(raw) => string(raw).ok_or("must be a string"),
    };
    let ty = ty.map_err(|reason| errors.push(FieldError::new("/type", reason))).ok();
    let timestamp = match raw.timestamp {
        None => Err("is required"),
        Some(raw) => timestamp(raw),
    };
    let timestamp = timestamp.map_err(|reason| errors.push(FieldError::new("/timestamp", reason))).ok();
    let payload = match raw.payload {
        None => Err("is required"),
        Some(raw) if raw.get().starts_with('{') => Ok(raw),
        Some(_) => Err("must be an object"),
    };
    let payload = payload.map_err(|reason| errors.push(FieldError::new("/payload", reason))).ok();

    let fail = |error: ErrorPayload| DecodeError { request_id: request_id.clone(), error };
    let (Some(ty), Some(timestamp), Some(payload), true) = (ty, timestamp, payload, errors.is_empty()) else {
        let message = format!("invalid envelope: {}", summary(&errors));
        return Err(fail(ErrorPayload::with_field_errors(ErrorCode::InvalidMessage, message, errors)));
    };

    let Some(message_type) = MessageType::parse(&ty) else {
        let message = format!("unknown message type '{}'", ty.chars().take(64).collect::<String>());
        return Err(fail(ErrorPayload::new(ErrorCode::UnsupportedType, message).with_detail("type", ty.as_ref())));
    };
    if !message_type.sent_by(M::SIDE) {
        let other = if M::SIDE == Side::Client { "server" } else { "client" };
        let message = format!("'{message_type}' is sent only by the {other}");
        let error = ErrorPayload::new(ErrorCode::UnsupportedType, message).with_detail("type", ty.as_ref());
        return Err(fail(error));
    }

    let message = payload_message::<M>(message_type, payload.get()).map_err(fail)?;
    Ok(Envelope { timestamp, request_id, message })
}

/// Decodes the payload of a client message of type `ty` alone, judged exactly as [`decode_client`] judges it
/// inside an envelope, with pointers from the message root (`/payload/...`): for the HTTP API, whose bodies are
/// payloads. `payload` must be a JSON object.
pub fn decode_client_payload(ty: MessageType, payload: &str) -> Result<ClientMessage, ErrorPayload> {
    if !ty.sent_by(Side::Client) {
        return Err(ErrorPayload::new(ErrorCode::UnsupportedType, format!("'{ty}' is sent only by the server")));
    }
    payload_message(ty, payload)
}

/// The typed message of a payload; every fault of one that does not decode, and what its `check` finds.
fn payload_message<M: Decode>(message_type: MessageType, payload: &str) -> Result<M, ErrorPayload> {
    let message = match M::decode_payload(message_type, payload) {
        Ok(message) => message,
        Err(serde_error) => {
            let mut errors = schema::payload_errors(M::SIDE, message_type, payload);
            if errors.is_empty() {
                errors.push(FieldError::new("/payload", strip_position(&serde_error.to_string())));
            }
            let message = format!("invalid {message_type} payload: {}", summary(&errors));
            return Err(ErrorPayload::with_field_errors(ErrorCode::InvalidParams, message, errors));
        }
    };
    message.check()?;
    Ok(message)
}

/// Steps 1 and 2 of decoding: the text is JSON nested at most [`MAX_DEPTH`] levels, and an object whose envelope
/// fields each appear once. The fields are kept raw, to be judged one by one.
fn read_envelope(text: &str) -> Result<RawEnvelope<'_>, DecodeError> {
    // serde would read an array as a struct, element by element, so only an object may reach it.
    let is_object = text.trim_start_matches(JSON_WHITESPACE).starts_with('{');
    let parsed = is_object.then(|| serde_json::from_str::<RawEnvelope<'_>>(text));
    // serde stops at a repeated field without reading on, so a failed parse is checked again as plain JSON.
    if !matches!(parsed, Some(Ok(_))) {
        if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
            let reason = strip_position(&error.to_string());
            let payload = invalid_message(format!("not valid JSON: {reason}"), "", reason);
            return Err(DecodeError { request_id: None, error: at(payload, error.line(), error.column()) });
        }
    }
    let request_id = || if is_object { peek_request_id(text) } else { None };
    // Raw fields are read without a depth limit, so the limit is checked here, for the whole text at once.
    if let Some(offset) = depth_exceeded_at(text, MAX_DEPTH) {
        let reason = format!("nests objects and arrays more than {MAX_DEPTH} levels deep");
        let payload = invalid_message(format!("the message {reason}"), "", reason);
        let before = &text[..offset];
        let column = offset - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
        let error = at(payload, before.matches('\n').count() + 1, column);
        return Err(DecodeError { request_id: request_id(), error });
    }
    match parsed {
        Some(Ok(raw)) => Ok(raw),
        Some(Err(error)) => {
            // The only error left for an object that is JSON is a repeated envelope field.
            let reason = strip_position(&error.to_string());
            let field = reason.split('`').nth(1).unwrap_or_default();
            let message = format!("the envelope field '{field}' appears more than once");
            let payload = invalid_message(message, format!("/{field}"), "appears more than once");
            Err(DecodeError { request_id: request_id(), error: at(payload, error.line(), error.column()) })
        }
        None => {
            let error = invalid_message("a message must be a JSON object", "", "must be an object");
            Err(DecodeError { request_id: None, error })
        }
    }
}

/// An INVALID_MESSAGE error about one place in the message.
fn invalid_message(message: impl Into<String>, pointer: impl Into<String>, reason: impl Into<String>) -> ErrorPayload {
    ErrorPayload::with_field_errors(ErrorCode::InvalidMessage, message, vec![FieldError::new(pointer, reason)])
}

/// Adds where in the text an error was found, counted as serde_json counts lines and columns.
fn at(error: ErrorPayload, line: usize, column: usize) -> ErrorPayload {
    if line == 0 {
        return error;
    }
    error.with_detail("line", line).with_detail("column", column)
}

/// The requestId of a message that is not decoded (its envelope is broken, or the server refuses it unread for
/// its size or rate), when the requestId itself is valid, so that the error still reaches the caller's callback.
pub fn peek_request_id(text: &str) -> Option<RequestId> {
    #[derive(Deserialize)]
    struct OnlyRequestId<'a> {
        #[serde(rename = "requestId", borrow, default)]
        request_id: Option<Cow<'a, str>>,
    }
    // Fails, as it should, when the requestId itself is repeated or is not a string.
    let only: OnlyRequestId<'_> = serde_json::from_str(text).ok()?;
    RequestId::new(only.request_id?).ok()
}

/// Where JSON `text` opens an object or array more than `max` levels deep, as a byte offset, if it does.
fn depth_exceeded_at(text: &str, max: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0_usize, false, false);
    for (at, byte) in text.bytes().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Some(at);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// serde_json appends " at line 1 column 5" to its messages; the pointer already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn summary(errors: &[FieldError]) -> String {
    let mut text = match errors.first() {
        Some(first) if first.pointer.is_empty() => first.reason.clone(),
        Some(first) => format!("{} {}", first.pointer, first.reason),
        None => String::from("rejected"),
    };
    if errors.len() > 1 {
        text.push_str(&format!(" (and {} more)", errors.len() - 1));
    }
    text
}

fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Cow<'_, str>>(raw.get()).ok()
}

fn timestamp(raw: &RawValue) -> Result<u64, &'static str> {
    const REASON: &str = "must be a Unix time in seconds or milliseconds, from 0 to 2^53-1";
    let number = serde_json::from_str::<serde_json::Number>(raw.get()).map_err(|_| "must be a number")?;
    let value = number.as_f64().ok_or(REASON)?;
    // Precision: integers up to 2^53 - 1 are exact in an f64, and that is the bound.
    if !(value.is_finite() && (0.0..=MAX_SAFE_INTEGER as f64).contains(&value)) {
        return Err(REASON);
    }
    Ok(normalize_timestamp(value))
}

fn payload<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_str(text)
}

impl Decode for ClientMessage {
    const SIDE: Side = Side::Client;

    fn decode_payload(ty: MessageType, text: &str) -> serde_json::Result<Self> {
        use ClientMessage as M;
        Ok(match ty {
            MessageType::Connect => M::Connect(payload(text)?),
            // A client's disconnect always closes the connection: a bad reason is ignored, never answered.
            MessageType::Disconnect => M::Disconnect(payload(text).unwrap_or_default()),
            MessageType::Ping => M::Ping(payload::<Empty>(text)?),
            MessageType::Pong => M::Pong(payload::<Empty>(text)?),
            MessageType::Auth => M::Auth(payload(text)?),
            MessageType::Create => M::Create(payload(text)?),
            MessageType::Read => M::Read(payload(text)?),
            MessageType::Update => M::Update(payload(text)?),
            MessageType::Delete => M::Delete(payload(text)?),
            MessageType::Subscribe => M::Subscribe(payload(text)?),
            MessageType::Unsubscribe => M::Unsubscribe(payload(text)?),
            MessageType::Batch => M::Batch(payload(text)?),
            // `decode` has already refused the types a client may not send.
            other => return Err(serde::de::Error::custom(format!("'{other}' is sent only by the server"))),
        })
    }

    fn check(&self) -> Result<(), ErrorPayload> {
        match self {
            ClientMessage::Connect(connect) if connect.protocol_version.major() != PROTOCOL_MAJOR => {
                let message = format!(
                    "protocol version {} is not supported; this server speaks {}",
                    connect.protocol_version,
                    crate::PROTOCOL_VERSION
                );
                Err(ErrorPayload::new(ErrorCode::UnsupportedVersion, message)
                    .with_detail("requested", connect.protocol_version.as_str())
                    .with_detail("supported", vec![crate::PROTOCOL_VERSION]))
            }
            ClientMessage::Read(read) => rules_kept("read", read.check()),
            ClientMessage::Subscribe(subscribe) => rules_kept("subscribe", subscribe.check()),
            ClientMessage::Batch(batch) => rules_kept("batch", batch.check()),
            _ => Ok(()),
        }
    }
}

/// INVALID_PARAMS for a payload that breaks the rules its field types alone cannot say (`Read::check`, ...).
fn rules_kept(ty: &str, errors: Vec<FieldError>) -> Result<(), ErrorPayload> {
    if errors.is_empty() {
        return Ok(());
    }
    let message = format!("invalid {ty} payload: {}", summary(&errors));
    Err(ErrorPayload::with_field_errors(ErrorCode::InvalidParams, message, errors))
}

impl Decode for ServerMessage {
    const SIDE: Side = Side::Server;

    fn decode_payload(ty: MessageType, text: &str) -> serde_json::Result<Self> {
        use ServerMessage as M;
        Ok(match ty {
            MessageType::Connect => M::Connect(payload(text)?),
            MessageType::Disconnect => M::Disconnect(payload(text)?),
            MessageType::Ping => M::Ping(payload::<Empty>(text)?),
            MessageType::Pong => M::Pong(payload::<Empty>(text)?),
            MessageType::AuthSuccess => M::AuthSuccess(payload(text)?),
            MessageType::AuthFailed => M::AuthFailed(payload(text)?),
            MessageType::Create => M::Create(payload(text)?),
            MessageType::Read => M::Read(payload(text)?),
            MessageType::Update => M::Update(payload(text)?),
            MessageType::Delete => M::Delete(payload(text)?),
            MessageType::Subscribe => M::Subscribe(payload(text)?),
            MessageType::Unsubscribe => M::Unsubscribe(payload(text)?),
            MessageType::Notification => M::Notification(payload(text)?),
            MessageType::Event => M::Event(payload(text)?),
            MessageType::Error => M::Error(payload(text)?),
            MessageType::Batch => M::Batch(payload(text)?),
            MessageType::Auth => return Err(serde::de::Error::custom("'auth' is sent only by the client")),
        })
    }

    fn check(&self) -> Result<(), ErrorPayload> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A create whose message nests `depth` levels: envelope, payload, then `data` and objects inside it.
    fn create_nested(depth: usize) -> String {
        let inner = depth - 2;
        let data = format!("{}{{}}{}", "{\"a\":".repeat(inner - 1), "}".repeat(inner - 1));
        format!(
            r#"{{"type":"create","timestamp":1,"requestId":"r1","payload":{{"resourceType":"order","data":{data}}}}}"#
        )
    }

    #[test]
    fn messages_may_nest_up_to_the_limit_and_no_deeper() {
        assert!(decode_client(&create_nested(MAX_DEPTH)).is_ok());
        let error = decode_client(&create_nested(MAX_DEPTH + 1)).err().map(|e| (e.error.code, e.request_id));
        assert_eq!(error, Some((ErrorCode::InvalidMessage, RequestId::new("r1").ok())));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert_eq!(depth_exceeded_at(r#"{"a":"[[[[\"[[["}"#, 1), None);
        assert_eq!(depth_exceeded_at(r#"{"a":"]]]","b":[{}]}"#, 2), Some(16));
    }

    #[test]
    fn a_client_disconnect_with_a_bad_payload_still_decodes_without_a_reason() {
        let long = "r".repeat(124);
        for payload in [format!(r#"{{"reason":"{long}"}}"#), r#"{"reason":42}"#.to_owned()] {
            let text = format!(r#"{{"type":"disconnect","timestamp":1,"payload":{payload}}}"#);
            let message = decode_client(&text).ok().map(|env| env.message);
            assert_eq!(message, Some(ClientMessage::Disconnect(Default::default())), "{payload}");
        }
        // A bad envelope is still INVALID_MESSAGE, and a server's disconnect is still checked.
        let error = decode_client(r#"{"type":"disconnect","timestamp":-1,"payload":{}}"#).err().map(|e| e.error.code);
        assert_eq!(error, Some(ErrorCode::InvalidMessage));
        let error = decode_server(r#"{"type":"disconnect","timestamp":1,"payload":{"reason":42}}"#).err();
        assert_eq!(error.map(|e| e.error.code), Some(ErrorCode::InvalidParams));
    }

    #[test]
    fn an_array_is_never_an_envelope() {
        let error = decode_client(r#"["ping", 1, "r1", {}]"#).err().map(|e| e.error.code);
        assert_eq!(error, Some(ErrorCode::InvalidMessage));
    }
}
