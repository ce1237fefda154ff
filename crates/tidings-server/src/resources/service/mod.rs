//! The resource operations, shared by the WebSocket session and the HTTP API: rules, validation, storage.
//!
//! Errors carry pointers relative to the operation's payload (`/data/quantity`, `/patch/status`, `/filter/x`);
//! the WebSocket session puts `/payload` in front, as the spec's pointers start at the message root.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use tidings_protocol::{
    Create, Delete, Deleted, ErrorCode, ErrorPayload, FieldError, Read, ReadResult, Resource, ResourceList, Text,
    Update, Version,
};
use tracing::error;

use super::access::{allows, has_any_role, reach, Reach};
use super::data::{apply_defaults, merge, validate};
use super::types::{ResourceTypeDef, ResourceTypes};
mod topics;

pub use topics::{Opened, ReplayPage};

use crate::auth::Identity;
use crate::fanout::Fanout;
use crate::notifications::{Message, Notifier};
use crate::storage::{
    fingerprint, CreateOutcome, EventRecord, IdempotencyKey, ListQuery, NewRecord, OrderKey, Recipients, Record,
    Storage, StorageError, UpdateOutcome,
};

/// The resource operations of one server.
#[derive(Debug, Clone)]
pub struct Resources {
    types: ResourceTypes,
    storage: Arc<dyn Storage>,
    fanout: Arc<Fanout>,
    notifier: Arc<Notifier>,
}

/// The result of a change: the reply, and the event it committed (none for a replayed create or no change).
#[derive(Debug)]
pub struct Changed<T> {
    /// What to answer.
    pub reply: T,
    /// The event to publish.
    pub event: Option<EventRecord>,
}

impl Resources {
    /// The operations over `types`, stored in `storage`, their events fanned out by `fanout`.
    pub fn new(types: ResourceTypes, storage: Arc<dyn Storage>, fanout: Arc<Fanout>, notifier: Arc<Notifier>) -> Self {
        Resources { types, storage, fanout, notifier }
    }

    /// Tells the hub where every type's event stream stands; call once before serving.
    pub async fn start_streams(&self) -> Result<(), StorageError> {
        self.fanout.start_streams(self.types.names()).await
    }

    /// Hands a committed event to this node's hub and to the other nodes.
    fn publish(&self, event: Option<&EventRecord>) {
        if let Some(event) = event {
            self.fanout.event(event.clone());
        }
    }

    /// The storage, for readiness checks.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The resource types.
    pub fn types(&self) -> &ResourceTypes {
        &self.types
    }

    /// `create`: validates, applies defaults, stores; a repeated requestId replays the first result.
    pub async fn create(
        &self,
        who: &Identity,
        request_id: Option<&str>,
        create: Create,
    ) -> Result<Changed<Resource>, ErrorPayload> {
        let (this, who, request_id) = (self.clone(), who.clone(), request_id.map(str::to_owned));
        detached(async move { this.create_now(&who, request_id.as_deref(), create).await }).await
    }

    async fn create_now(
        &self,
        who: &Identity,
        request_id: Option<&str>,
        create: Create,
    ) -> Result<Changed<Resource>, ErrorPayload> {
        let def = self.type_of(create.resource_type.as_str())?;
        if reach(&def.rules.create, who) == Reach::Nothing {
            return Err(forbidden(format!("you may not create {}", def.name())));
        }
        let key = request_id.map(|request_id| IdempotencyKey {
            user_id: who.user_id.clone(),
            request_id: request_id.to_owned(),
            fingerprint: fingerprint(def.name(), &create.data),
        });
        let data = prepare_new(def, who, create.data)?;
        let new = NewRecord {
            resource_type: def.name().to_owned(),
            id: new_id(&def.config.id_prefix),
            owner_id: who.user_id.clone(),
            data,
        };
        match self.storage.create(new, key).await {
            Ok(CreateOutcome::Created(record, event)) => {
                self.publish(Some(&event));
                Ok(Changed { reply: resource(record)?, event: Some(event) })
            }
            Ok(CreateOutcome::Replayed(record)) => Ok(Changed { reply: resource(record)?, event: None }),
            Err(StorageError::KeyReused) => Err(ErrorPayload::new(
                ErrorCode::Conflict,
                "this requestId was already used for a different create; use a new requestId",
            )
            .with_detail("reason", "request_id_reused")),
            Err(e) => Err(storage_error(e, def.name(), None)),
        }
    }

    /// `read`: one resource, or a page of those the user may see.
    pub async fn read(&self, who: &Identity, read: Read) -> Result<ReadResult, ErrorPayload> {
        let def = self.type_of(read.resource_type.as_str())?;
        if let Some(id) = &read.id {
            let record = self
                .storage
                .get(def.name(), id.as_str())
                .await
                .map_err(|e| storage_error(e, def.name(), Some(id.as_str())))?;
            return match record {
                Some(record) if allows(&def.rules.read, who, &record.owner_id) => {
                    Ok(ReadResult::One(resource(record)?))
                }
                _ => Err(not_found(def.name(), id.as_str())),
            };
        }
        let owner = match reach(&def.rules.read, who) {
            Reach::All => None,
            Reach::Own => Some(who.user_id.clone()),
            Reach::Nothing => return Err(forbidden(format!("you may not list {}", def.name()))),
        };
        let mut errors = Vec::new();
        let mut filter = Vec::new();
        for (field, value) in read.filter.iter().flatten() {
            if def.declares(field.as_str()) {
                filter.push((field.as_str().to_owned(), serde_json::to_value(value).unwrap_or(Value::Null)));
            } else {
                errors.push(FieldError::new(format!("/filter/{field}"), format!("is not a field of {}", def.name())));
            }
        }
        let (order, descending) = match &read.order_by {
            None => (OrderKey::CreatedAt, false),
            Some(order_by) => {
                let key = match order_by.field() {
                    "createdAt" => Some(OrderKey::CreatedAt),
                    "updatedAt" => Some(OrderKey::UpdatedAt),
                    "id" => Some(OrderKey::Id),
                    field => match def.field_type(field) {
                        Some(ty @ ("string" | "number" | "integer")) => {
                            Some(OrderKey::Field(field.to_owned(), ty.to_owned()))
                        }
                        _ => None,
                    },
                };
                match key {
                    Some(key) => (key, order_by.descending()),
                    None => {
                        errors.push(FieldError::new(
                            "/orderBy",
                            format!("must be createdAt, updatedAt, id or a string or number field of {}", def.name()),
                        ));
                        (OrderKey::CreatedAt, false)
                    }
                }
            }
        };
        let query_id = fingerprint(
            def.name(),
            &Map::from_iter([
                ("owner".to_owned(), json!(owner)),
                ("filter".to_owned(), json!(filter)),
                ("order".to_owned(), json!(format!("{order:?}{descending}"))),
            ]),
        );
        let after = match &read.cursor {
            None => None,
            Some(cursor) => match decode_cursor(cursor.as_str(), &query_id) {
                Some(after) => Some(after),
                None => {
                    errors.push(FieldError::new(
                        "/cursor",
                        "is not a cursor of this list: pass nextCursor with the same filter and orderBy",
                    ));
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(invalid_params(format!("invalid read of {}", def.name()), errors));
        }
        let limit = read.limit.map_or(tidings_protocol::Limit::DEFAULT.get(), |l| l.get()) as usize;
        let query = ListQuery {
            resource_type: def.name().to_owned(),
            owner,
            filter,
            order,
            descending,
            after,
            limit: limit + 1,
        };
        let mut page = self.storage.list(query).await.map_err(|e| storage_error(e, def.name(), None))?;
        let next_cursor = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|last| encode_cursor(&query_id, &last.key, &last.record.id))
        } else {
            None
        };
        let items = page.into_iter().map(|listed| resource(listed.record)).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = next_cursor.and_then(|c| Text::new(c).ok());
        Ok(ReadResult::List(ResourceList { resource_type: read.resource_type, items, next_cursor }))
    }

    /// `update`: applies a merge patch, under the type's rules, optionally at an expected version.
    pub async fn update(&self, who: &Identity, update: Update) -> Result<Changed<Resource>, ErrorPayload> {
        let (this, who) = (self.clone(), who.clone());
        detached(async move { this.update_now(&who, update).await }).await
    }

    async fn update_now(&self, who: &Identity, update: Update) -> Result<Changed<Resource>, ErrorPayload> {
        let def = Arc::clone(self.type_of(update.resource_type.as_str())?);
        let server_set: Vec<FieldError> = update
            .patch
            .keys()
            .filter(|field| def.config.server_set.contains(field))
            .map(|field| FieldError::new(format!("/patch/{field}"), "is set by the server"))
            .collect();
        if !server_set.is_empty() {
            return Err(invalid_params(format!("invalid update of {}", def.name()), server_set));
        }
        let who_owned = who.clone();
        let (name, id) = (def.name().to_owned(), update.id.as_str().to_owned());
        let expected = update.expected_version;
        let patch = update.patch;
        // What the built-in owner notification needs from inside the transaction: the watched fields' old values.
        let watched: Arc<std::sync::Mutex<Vec<(String, Value)>>> = Arc::default();
        let seen = Arc::clone(&watched);
        let notify_on = def.config.notify_owner_on.clone();
        let check = Box::new(move |current: &Record| {
            let who = &who_owned;
            if !allows(&def.rules.read, who, &current.owner_id) {
                return Err(not_found(def.name(), &current.id));
            }
            if !allows(&def.rules.update, who, &current.owner_id) {
                return Err(forbidden(format!("you may not change this {}", def.name())));
            }
            check_version(expected, current)?;
            let data = merge(&current.data, &patch);
            if data == current.data {
                return Ok(None);
            }
            let mut refused = Vec::new();
            let mut read_only = Vec::new();
            for field in patch.keys() {
                if data.get(field) == current.data.get(field) {
                    continue;
                }
                if def.config.read_only.contains(field) {
                    read_only.push(FieldError::new(format!("/patch/{field}"), "is read-only"));
                }
                if let Some(roles) = def.config.field_roles.get(field) {
                    if !has_any_role(who, roles) {
                        refused.push(FieldError::new(
                            format!("/patch/{field}"),
                            format!("may be changed only by role {}", roles.join(" or ")),
                        ));
                    }
                }
            }
            if !refused.is_empty() {
                return Err(ErrorPayload::with_field_errors(
                    ErrorCode::Forbidden,
                    "you may not change these fields",
                    refused,
                ));
            }
            let mut errors = read_only;
            errors.extend(validate(&def, &data, "/patch"));
            if !errors.is_empty() {
                return Err(invalid_params(format!("the patched {} would be invalid", def.name()), errors));
            }
            let changed = notify_on.iter().filter(|field| data.get(*field) != current.data.get(*field));
            let old: Vec<(String, Value)> =
                changed.map(|field| (field.clone(), current.data.get(field).cloned().unwrap_or(Value::Null))).collect();
            *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = old;
            Ok(Some(data))
        });
        match self.storage.update(&name, &id, &who.user_id, check).await {
            Ok(UpdateOutcome::Changed(record, event)) => {
                self.publish(Some(&event));
                let old = std::mem::take(&mut *watched.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
                if record.owner_id != who.user_id {
                    self.notify_owner(&record, old).await;
                }
                Ok(Changed { reply: resource(record)?, event: Some(event) })
            }
            Ok(UpdateOutcome::Unchanged(record)) => Ok(Changed { reply: resource(record)?, event: None }),
            Err(e) => Err(storage_error(e, &name, Some(&id))),
        }
    }

    /// The built-in rule: a resource's owner hears when someone else changes a watched field, such as an order's
    /// status. It is sent before the change is answered, so whoever made the change knows the owner was told;
    /// a failure to send is logged and does not undo the change.
    async fn notify_owner(&self, record: &Record, old: Vec<(String, Value)>) {
        for (field, before) in old {
            let after = record.data.get(&field).cloned().unwrap_or(Value::Null);
            let show = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            let message = Message {
                level: "info".to_owned(),
                title: format!("{} {}: {field} is now {}", record.resource_type, record.id, show(&after)),
                body: format!("Its {field} changed from {} to {}.", show(&before), show(&after)),
                data: Map::from_iter([
                    ("resourceType".to_owned(), json!(record.resource_type)),
                    ("id".to_owned(), json!(record.id)),
                    ("field".to_owned(), json!(field)),
                    ("from".to_owned(), before),
                    ("to".to_owned(), after),
                ]),
            };
            if let Err(error) = self.notifier.send(Recipients::Users(vec![record.owner_id.clone()]), message).await {
                tracing::warn!("the owner of {} {} was not notified: {error}", record.resource_type, record.id);
            }
        }
    }

    /// `delete`: removes a resource under the type's rules, optionally at an expected version.
    pub async fn delete(&self, who: &Identity, delete: Delete) -> Result<Changed<Deleted>, ErrorPayload> {
        let (this, who) = (self.clone(), who.clone());
        detached(async move { this.delete_now(&who, delete).await }).await
    }

    async fn delete_now(&self, who: &Identity, delete: Delete) -> Result<Changed<Deleted>, ErrorPayload> {
        let def = Arc::clone(self.type_of(delete.resource_type.as_str())?);
        let (name, id) = (def.name().to_owned(), delete.id.as_str().to_owned());
        let who_owned = who.clone();
        let expected = delete.expected_version;
        let check = Box::new(move |current: &Record| {
            if !allows(&def.rules.read, &who_owned, &current.owner_id) {
                return Err(not_found(def.name(), &current.id));
            }
            if !allows(&def.rules.delete, &who_owned, &current.owner_id) {
                return Err(forbidden(format!("you may not delete this {}", def.name())));
            }
            check_version(expected, current)
        });
        let event = self
            .storage
            .delete(&name, &id, &who.user_id, check)
            .await
            .map_err(|e| storage_error(e, &name, Some(&id)))?;
        self.publish(Some(&event));
        let reply = Deleted {
            resource_type: delete.resource_type,
            id: delete.id,
            version: Version::new(event.version).map_err(|_| internal("a version out of range"))?,
            deleted_at: event.occurred_at,
        };
        Ok(Changed { reply, event: Some(event) })
    }

    fn type_of(&self, name: &str) -> Result<&Arc<ResourceTypeDef>, ErrorPayload> {
        self.types.get(name).ok_or_else(|| {
            ErrorPayload::new(ErrorCode::NotFound, format!("there is no resource type '{name}'"))
                .with_detail("resourceType", name)
        })
    }
}

/// Runs a change in a task of its own and waits for it. A caller that goes away (an HTTP client that hangs up)
/// drops only the waiting: the write, which storage may commit anyway, is still followed by its publication.
async fn detached<T: Send + 'static>(
    change: impl std::future::Future<Output = Result<T, ErrorPayload>> + Send + 'static,
) -> Result<T, ErrorPayload> {
    tokio::spawn(change).await.unwrap_or_else(|e| Err(internal(&format!("a change failed: {e}"))))
}

/// Checks and completes the data of a create: server-set and role-reserved fields, defaults, the schema.
fn prepare_new(
    def: &ResourceTypeDef,
    who: &Identity,
    mut data: Map<String, Value>,
) -> Result<Map<String, Value>, ErrorPayload> {
    let mut invalid = Vec::new();
    let mut refused = Vec::new();
    for field in data.keys() {
        if def.config.server_set.contains(field) {
            invalid.push(FieldError::new(format!("/data/{field}"), "is set by the server"));
        }
        if let Some(roles) = def.config.field_roles.get(field) {
            let is_default = def.default_of(field) == data.get(field);
            if !is_default && !has_any_role(who, roles) {
                refused.push(FieldError::new(
                    format!("/data/{field}"),
                    format!("may be set only by role {}", roles.join(" or ")),
                ));
            }
        }
    }
    if !refused.is_empty() {
        return Err(ErrorPayload::with_field_errors(ErrorCode::Forbidden, "you may not set these fields", refused));
    }
    apply_defaults(&def.config.schema, &mut data);
    invalid.extend(validate(def, &data, "/data"));
    if !invalid.is_empty() {
        return Err(invalid_params(format!("invalid {}", def.name()), invalid));
    }
    Ok(data)
}

fn check_version(expected: Option<Version>, current: &Record) -> Result<(), ErrorPayload> {
    match expected {
        Some(expected) if expected.get() != current.version => Err(ErrorPayload::new(
            ErrorCode::Conflict,
            format!("the {} is at version {}, not {}", current.resource_type, current.version, expected.get()),
        )
        .with_detail("currentVersion", current.version)),
        _ => Ok(()),
    }
}

/// A new id: the type's prefix and ten random Crockford base32 characters (50 bits), such as `ORD-7K3M9Q2XAB`.
fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bits: u64 = rand::random();
    let tail: String = (0..10).map(|n| ALPHABET[((bits >> (n * 5)) & 31) as usize] as char).collect();
    format!("{prefix}-{tail}")
}

fn encode_cursor(query_id: &str, key: &Value, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!({ "q": query_id, "k": key, "i": id }).to_string())
}

fn decode_cursor(cursor: &str, query_id: &str) -> Option<(Value, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    if value.get("q")?.as_str()? != query_id {
        return None;
    }
    Some((value.get("k")?.clone(), value.get("i")?.as_str()?.to_owned()))
}

/// The protocol's resource for a stored record.
fn resource(record: Record) -> Result<Resource, ErrorPayload> {
    let bad = |what: &str| internal(&format!("a stored resource has an invalid {what}"));
    Ok(Resource {
        resource_type: tidings_protocol::ResourceType::new(record.resource_type).map_err(|_| bad("type"))?,
        id: tidings_protocol::ResourceId::new(record.id).map_err(|_| bad("id"))?,
        version: Version::new(record.version).map_err(|_| bad("version"))?,
        owner_id: Text::new(record.owner_id).map_err(|_| bad("owner"))?,
        created_at: record.created_at,
        updated_at: record.updated_at,
        data: record.data,
    })
}

fn not_found(resource_type: &str, id: &str) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::NotFound, format!("there is no {resource_type} '{id}'"))
        .with_detail("resourceType", resource_type)
        .with_detail("id", id)
}

fn forbidden(message: String) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::Forbidden, message)
}

fn invalid_params(message: String, errors: Vec<FieldError>) -> ErrorPayload {
    let summary = errors.first().map(|e| format!(": {} {}", e.pointer, e.reason)).unwrap_or_default();
    ErrorPayload::with_field_errors(ErrorCode::InvalidParams, format!("{message}{summary}"), errors)
}

fn internal(what: &str) -> ErrorPayload {
    let incident = format!("{:016x}", rand::random::<u64>());
    error!(incident, "{what}");
    ErrorPayload::new(ErrorCode::Internal, "the server failed; nothing about the request was wrong")
        .with_detail("incidentId", incident)
}

fn storage_error(error: StorageError, resource_type: &str, id: Option<&str>) -> ErrorPayload {
    match error {
        StorageError::NotFound => not_found(resource_type, id.unwrap_or_default()),
        StorageError::Rejected(payload) => payload,
        StorageError::KeyReused => ErrorPayload::new(ErrorCode::Conflict, "this requestId was already used")
            .with_detail("reason", "request_id_reused"),
        StorageError::Unavailable(why) => {
            tracing::warn!("storage unavailable: {why}");
            ErrorPayload::new(ErrorCode::Unavailable, "storage is unavailable; nothing was changed, retry later")
                .with_detail("retryAfterMs", 1000)
        }
        StorageError::Internal(why) => internal(&why),
    }
}

/// Puts `prefix` in front of every pointer of an error's `details.errors` (the session adds `/payload`).
pub fn prefix_pointers(mut error: ErrorPayload, prefix: &str) -> ErrorPayload {
    let errors = error.field_errors();
    if errors.is_empty() {
        return error;
    }
    let moved: Vec<FieldError> =
        errors.into_iter().map(|e| FieldError::new(format!("{prefix}{}", e.pointer), e.reason)).collect();
    if let Some(details) = error.details.as_mut() {
        details.insert("errors".to_owned(), serde_json::to_value(moved).unwrap_or(Value::Null));
    }
    error
}
