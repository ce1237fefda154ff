//! Reading an HTTP request into the parts of a protocol request: the token, the path, headers, query and body.
//!
//! Every value is checked by the protocol crate's own field types, so a value the WebSocket decoder refuses is
//! refused here with the same reason. A fault is reported at the pointer of the payload field the value becomes
//! (`/resourceType`, `/id`, `/data`, `/patch`, `/filter/status`, `/query/and/0/eq`, `/orderBy`, `/limit`, `/cursor`,
//! `/expectedVersion`), or `/requestId` for the Idempotency-Key header, as docs/http-api.md explains.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::header::{self, HeaderMap, HeaderName};
use axum::http::StatusCode;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tidings_protocol::{
    ErrorCode, ErrorPayload, FieldError, FieldName, Limit, Order, OrderBy, RequestId, ResourceId, ResourceType, Scalar,
    Text, Version,
};

use super::output::ApiError;
use crate::auth::{Authenticator, Identity};

/// The pointers of the payload fields that parts of an HTTP request become.
pub(super) mod at {
    /// The `{type}` of the path.
    pub const TYPE: &str = "/resourceType";
    /// The `{id}` of the path.
    pub const ID: &str = "/id";
    /// The body of a create.
    pub const DATA: &str = "/data";
    /// The body of an update.
    pub const PATCH: &str = "/patch";
    /// The Idempotency-Key header: the requestId of a WebSocket create.
    pub const REQUEST_ID: &str = "/requestId";
    /// The If-Match header and the `expectedVersion` query parameter.
    pub const EXPECTED_VERSION: &str = "/expectedVersion";
    /// The `filter.FIELD` query parameters.
    pub const FILTER: &str = "/filter";
    /// The `orderBy` query parameter.
    pub const ORDER_BY: &str = "/orderBy";
    /// The `limit` query parameter.
    pub const LIMIT: &str = "/limit";
    /// The `cursor` query parameter.
    pub const CURSOR: &str = "/cursor";
    /// The `query` query parameter: a query as JSON (docs/protocol.md, 7.7).
    pub const QUERY: &str = "/query";
    /// The `fields` query parameter.
    pub const FIELDS: &str = "/fields";
    /// The `count` query parameter.
    pub const COUNT: &str = "/count";
}

/// The `Idempotency-Key` request header.
pub(super) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The longest token accepted, over HTTP as over the WebSocket (`auth.token`).
const MAX_TOKEN_CHARS: usize = 8192;

/// The user a request's `Authorization: Bearer` token names, or the 401 to answer with.
pub(super) async fn bearer(auth: &Authenticator, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        let error = ErrorPayload::new(ErrorCode::Unauthorized, "send a token: Authorization: Bearer <token>")
            .with_detail("reason", "missing_token");
        return Err(error.into());
    };
    // The same bound as the WebSocket's `auth.token` (at most 8192 characters): a longer one is not verified.
    if token.chars().count() > MAX_TOKEN_CHARS {
        return Err(crate::auth::Rejection::Malformed.payload().into());
    }
    // The same verification, and the same payload, as a rejected WebSocket `auth` gets in `auth_failed`.
    auth.verify(token).await.map_err(|rejection| rejection.payload().into())
}

/// The `{type}` and `{id}` of the path, as far as they are valid.
pub(super) fn path(
    params: Result<Path<Vec<(String, String)>>, PathRejection>,
    errors: &mut Vec<FieldError>,
) -> (Option<ResourceType>, Option<ResourceId>) {
    let params = match params {
        Ok(Path(params)) => params,
        Err(PathRejection::FailedToDeserializePathParams(e)) => {
            // Only a parameter that is not UTF-8 once percent-decoded can fail to become a string.
            let pointer = match e.kind() {
                ErrorKind::InvalidUtf8InPathParam { key } if key == "id" => at::ID,
                _ => at::TYPE,
            };
            errors.push(FieldError::new(pointer, "must be UTF-8 once percent-decoded"));
            return (None, None);
        }
        Err(other) => {
            // The routes always have their parameters, so this is only here to answer rather than panic.
            errors.push(FieldError::new(at::TYPE, other.body_text()));
            return (None, None);
        }
    };
    let mut ty = None;
    let mut id = None;
    for (key, value) in params {
        match key.as_str() {
            "type" => ty = checked(ResourceType::new(value), at::TYPE, errors),
            "id" => id = checked(ResourceId::new(value), at::ID, errors),
            _ => {}
        }
    }
    (ty, id)
}

/// The `Idempotency-Key` header as a requestId; a bad one is INVALID_MESSAGE, as a bad requestId is over WebSocket.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<RequestId>, ApiError> {
    let reason = match one_header(headers, &IDEMPOTENCY_KEY) {
        Ok(None) => return Ok(None),
        Ok(Some(value)) => match value.to_str().ok().map(RequestId::new) {
            Some(Ok(id)) => return Ok(Some(id)),
            _ => RequestId::REASON,
        },
        Err(reason) => reason,
    };
    let message = format!("invalid Idempotency-Key: {reason}");
    let errors = vec![FieldError::new(at::REQUEST_ID, reason)];
    Err(ErrorPayload::with_field_errors(ErrorCode::InvalidMessage, message, errors).into())
}

/// The expected version of an update or delete: from `If-Match: "3"` or the `expectedVersion` query parameter.
pub(super) fn expected_version(headers: &HeaderMap, query: &Query, errors: &mut Vec<FieldError>) -> Option<Version> {
    const IF_MATCH_REASON: &str = "If-Match must be one entity tag such as \"3\" (the resource's version), or *";
    let from_header = match one_header(headers, &header::IF_MATCH) {
        Ok(None) => None,
        Ok(Some(value)) => {
            let value = value.to_str().unwrap_or_default().trim();
            let tag = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
            match tag {
                // `*` asks only that the resource exists, which every update and delete requires anyway.
                _ if value == "*" => None,
                Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    checked(json_number::<Version>(digits), at::EXPECTED_VERSION, errors)
                }
                _ => {
                    errors.push(FieldError::new(at::EXPECTED_VERSION, IF_MATCH_REASON));
                    None
                }
            }
        }
        Err(reason) => {
            errors.push(FieldError::new(at::EXPECTED_VERSION, reason));
            None
        }
    };
    let from_query = query
        .single("expectedVersion", at::EXPECTED_VERSION, errors)
        .and_then(|value| checked(json_number::<Version>(value), at::EXPECTED_VERSION, errors));
    match (from_header, from_query) {
        (Some(a), Some(b)) if a != b => {
            errors.push(FieldError::new(at::EXPECTED_VERSION, "If-Match and expectedVersion name different versions"));
            None
        }
        (header, query) => header.or(query),
    }
}

/// The list parameters of `GET /api/v1/resources/{type}`.
#[derive(Debug, Default)]
pub(super) struct ListParams {
    /// The `filter.FIELD` parameters, when there are any.
    pub filter: Option<BTreeMap<FieldName, Scalar>>,
    /// `query`, read from its JSON.
    pub query: Option<tidings_protocol::Query>,
    /// `orderBy`: one key, or several separated by commas.
    pub order_by: Option<Order>,
    /// `limit`.
    pub limit: Option<Limit>,
    /// `cursor`.
    pub cursor: Option<Text<1, 512>>,
    /// `fields`, separated by commas.
    pub fields: Option<Vec<FieldName>>,
    /// `count`: `true` or `false`.
    pub count: Option<bool>,
}

/// Reads `filter.FIELD`, `query`, `orderBy`, `limit`, `cursor`, `fields` and `count`; other parameters are ignored, as unknown payload
/// fields are.
pub(super) fn list_params(query: &Query, errors: &mut Vec<FieldError>) -> ListParams {
    let mut filter = BTreeMap::new();
    // A set, since a long query string can repeat a parameter many times.
    let mut seen = BTreeSet::new();
    for (key, value) in &query.0 {
        let Some(field) = key.strip_prefix("filter.") else { continue };
        let pointer = format!("{}/{}", at::FILTER, escape(field));
        if !seen.insert(field) {
            errors.push(FieldError::new(pointer, "appears more than once"));
            continue;
        }
        let name = checked(FieldName::new(field), &pointer, errors);
        let value = checked(scalar(value), &pointer, errors);
        if let (Some(name), Some(value)) = (name, value) {
            filter.insert(name, value);
        }
    }
    let order_by = query.single("orderBy", at::ORDER_BY, errors).and_then(|text| {
        let keys: Vec<Option<OrderBy>> = text
            .split(',')
            .enumerate()
            .map(|(n, key)| {
                let pointer =
                    if text.contains(',') { format!("{}/{n}", at::ORDER_BY) } else { at::ORDER_BY.to_owned() };
                checked(OrderBy::new(key), &pointer, errors)
            })
            .collect();
        let mut keys: Vec<OrderBy> = keys.into_iter().collect::<Option<_>>()?;
        Some(if keys.len() == 1 { Order::One(keys.remove(0)) } else { Order::Many(keys) })
    });
    let fields = query.single("fields", at::FIELDS, errors).and_then(|text| {
        let names: Vec<Option<FieldName>> = text
            .split(',')
            .enumerate()
            .map(|(n, name)| checked(FieldName::new(name), &format!("{}/{n}", at::FIELDS), errors))
            .collect();
        names.into_iter().collect::<Option<Vec<_>>>()
    });
    let count = query.single("count", at::COUNT, errors).and_then(|text| match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            errors.push(FieldError::new(at::COUNT, "must be true or false"));
            None
        }
    });
    let limit =
        query.single("limit", at::LIMIT, errors).and_then(|v| checked(json_number::<Limit>(v), at::LIMIT, errors));
    let cursor = query.single("cursor", at::CURSOR, errors).and_then(|v| checked(Text::new(v), at::CURSOR, errors));
    let conditions = query.single("query", at::QUERY, errors).and_then(|text| {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
            errors.push(FieldError::new(at::QUERY, "must be a query as JSON (docs/protocol.md, 7.7)"));
            return None;
        };
        tidings_protocol::Query::from_json(&json, at::QUERY).map_err(|faults| errors.extend(faults)).ok()
    });
    ListParams {
        filter: (!seen.is_empty()).then_some(filter),
        query: conditions,
        order_by,
        limit,
        cursor,
        fields,
        count,
    }
}

/// A filter value from its text in the query string (docs/http-api.md, "Filters"): `true`, `false`, `null` and
/// JSON numbers are those JSON values, a value in double quotes is a JSON string, and any other text is itself.
pub(super) fn scalar(text: &str) -> Result<Scalar, &'static str> {
    const NUMBER_REASON: &str = "is a number out of range; quote it to match a string";
    const QUOTED_REASON: &str = "starts with '\"' but is not a JSON string";
    match text {
        "true" => Ok(Scalar::Bool(true)),
        "false" => Ok(Scalar::Bool(false)),
        "null" => Ok(Scalar::Null),
        _ if is_json_number(text) => serde_json::from_str(text).map(Scalar::Number).map_err(|_| NUMBER_REASON),
        _ if text.starts_with('"') => serde_json::from_str(text).map(Scalar::String).map_err(|_| QUOTED_REASON),
        _ => Ok(Scalar::String(text.to_owned())),
    }
}

/// Whether `text` is a number as JSON writes it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(text: &str) -> bool {
    fn digits(s: &str) -> (&str, usize) {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (&s[n..], n)
    }
    let rest = text.strip_prefix('-').unwrap_or(text);
    let (rest, whole) = digits(rest);
    if whole == 0 || (whole > 1 && text.trim_start_matches('-').starts_with('0')) {
        return false;
    }
    let rest = match rest.strip_prefix('.') {
        Some(fraction) => match digits(fraction) {
            (_, 0) => return false,
            (rest, _) => rest,
        },
        None => rest,
    };
    let rest = match rest.strip_prefix(['e', 'E']) {
        Some(exponent) => match digits(exponent.strip_prefix(['+', '-']).unwrap_or(exponent)) {
            (_, 0) => return false,
            (rest, _) => rest,
        },
        None => rest,
    };
    rest.is_empty()
}

/// The query string's parameters, decoded, in order.
#[derive(Debug, Default)]
pub(super) struct Query(pub Vec<(String, String)>);

impl Query {
    /// The value of a parameter that may appear at most once.
    pub(super) fn single(&self, name: &str, pointer: &str, errors: &mut Vec<FieldError>) -> Option<&str> {
        let mut values = self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str());
        let first = values.next();
        if values.next().is_some() {
            errors.push(FieldError::new(pointer, "appears more than once"));
            return None;
        }
        first
    }
}

/// The JSON body of a create or update: an object, read up to `max_bytes`. `pointer` names the payload field
/// the body becomes. JSON that does not parse is INVALID_MESSAGE, as a WebSocket message that does not parse is;
/// a value other than an object is INVALID_PARAMS, listed with the other bad fields of the request.
pub(super) async fn json_object(
    headers: &HeaderMap,
    body: Body,
    max_bytes: usize,
    pointer: &str,
    errors: &mut Vec<FieldError>,
) -> Result<Option<Map<String, Value>>, ApiError> {
    check_media_type(headers, pointer)?;
    let bytes = read_bounded(headers, body, max_bytes).await?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        // The position goes into `line` and `column`, as the WebSocket decoder reports it.
        let reason = without_position(&e.to_string());
        let message = format!("the body is not valid JSON: {reason}");
        ErrorPayload::with_field_errors(ErrorCode::InvalidMessage, message, vec![FieldError::new(pointer, reason)])
            .with_detail("line", e.line())
            .with_detail("column", e.column())
    })?;
    match value {
        Value::Object(object) => Ok(Some(object)),
        _ => {
            errors.push(FieldError::new(pointer, "must be an object"));
            Ok(None)
        }
    }
}

/// Refuses a body declared as anything but JSON; a body without a Content-Type is read as JSON.
fn check_media_type(headers: &HeaderMap, pointer: &str) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let essence = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    // application/json, and its structured-syntax relatives such as application/merge-patch+json (RFC 6839).
    let is_json = essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        return Ok(());
    }
    let reason = "must be JSON: send Content-Type application/json or application/merge-patch+json";
    let error = ErrorPayload::with_field_errors(
        ErrorCode::InvalidMessage,
        format!("the body is {essence}, not JSON"),
        vec![FieldError::new(pointer, reason)],
    );
    Err(ApiError::with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE, error))
}

/// Reads a body of at most `max_bytes`, without reading more than one chunk past the limit.
async fn read_bounded(headers: &HeaderMap, body: Body, max_bytes: usize) -> Result<Vec<u8>, ApiError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let too_large = |size: Option<usize>| {
        let mut error = ErrorPayload::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than the limit of {max_bytes} bytes"),
        )
        .with_detail("maxBytes", max_bytes);
        if let Some(size) = size {
            error = error.with_detail("size", size);
        }
        ApiError::from(error)
    };
    if let Some(size) = declared.filter(|size: &usize| *size > max_bytes) {
        return Err(too_large(Some(size)));
    }
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::from(ErrorPayload::new(ErrorCode::InvalidMessage, format!("the body could not be read: {e}")))
        })?;
        if bytes.len() + chunk.len() > max_bytes {
            // Without Content-Length the full size is unknown, and reading on to learn it is what the limit prevents.
            return Err(too_large(declared));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The one value of a header that may appear at most once, if present.
fn one_header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a axum::http::HeaderValue>, &'static str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err("appears more than once");
    }
    Ok(first)
}

/// A bounded integer field read from text as the WebSocket decoder reads it from JSON (`10` and `10.0` alike), with
/// the field type's own reason when it is out of bounds, and the decoder's when it is no number at all.
fn json_number<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    if !is_json_number(text) {
        return Err("must be an integer".to_owned());
    }
    serde_json::from_str(text).map_err(|e| without_position(&e.to_string()))
}

/// The value of a field type's check, or its reason recorded at `pointer`.
fn checked<T, E: ToString>(result: Result<T, E>, pointer: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    result.map_err(|e| errors.push(FieldError::new(pointer, e.to_string()))).ok()
}

/// serde_json ends its messages with " at line 1 column 5"; in a query value or header that says nothing.
fn without_position(message: &str) -> String {
    message.rfind(" at line ").map_or(message, |at| &message[..at]).to_owned()
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_json_scalars_or_plain_strings() {
        let json = |text: &str| scalar(text).map(|s| serde_json::to_value(s).unwrap_or_default());
        assert_eq!(json("true"), Ok(serde_json::json!(true)));
        assert_eq!(json("null"), Ok(Value::Null));
        assert_eq!(json("-2.5e3"), Ok(serde_json::json!(-2500.0)));
        assert_eq!(json("42"), Ok(serde_json::json!(42)));
        assert_eq!(json("\"42\""), Ok(serde_json::json!("42")));
        assert_eq!(json("pending"), Ok(serde_json::json!("pending")));
        // Not JSON numbers, so strings as written: leading zeros, a plus sign, a bare dot.
        for text in ["007", "+1", "1.", ".5", "1e", "0x10", "True", ""] {
            assert_eq!(json(text), Ok(Value::String(text.to_owned())), "{text}");
        }
        assert!(scalar("1e999").is_err());
        assert!(scalar("\"unterminated").is_err());
    }

    #[test]
    fn limits_and_versions_read_as_the_decoder_reads_them() {
        let mut errors = Vec::new();
        let query = Query(vec![("limit".into(), "10.0".into()), ("orderBy".into(), "-createdAt".into())]);
        let params = list_params(&query, &mut errors);
        assert_eq!((params.limit.map(Limit::get), errors.len()), (Some(10), 0));
        for bad in ["0", "101", "ten", "1e3", "2.5", ""] {
            let mut errors = Vec::new();
            list_params(&Query(vec![("limit".into(), bad.into())]), &mut errors);
            assert_eq!(errors.iter().map(|e| e.pointer.as_str()).collect::<Vec<_>>(), ["/limit"], "{bad}");
        }
        let mut errors = Vec::new();
        let twice = Query(vec![("filter.a".into(), "1".into()), ("filter.a".into(), "2".into())]);
        list_params(&twice, &mut errors);
        assert_eq!(errors, [FieldError::new("/filter/a", "appears more than once")]);
    }
}
