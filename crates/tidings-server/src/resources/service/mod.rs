//! The resource operations, shared by the WebSocket session and the HTTP API: the changes (create, update,
//! delete) and reads by id, each under the type's rules and schema. Creates are in `create.rs`, lists in
//! `list.rs`, subscriptions and replays in `topics.rs`, the error replies in `crate::errors`.
//!
//! A change travels one way: checked here, committed with its event by storage, then its event is published to
//! the relay (this node's hub and the other nodes), and only then answered. Each change runs on a task of its own
//! ([`detached`]; a create from its write on, `create.rs`), so a caller that hangs up cannot stop it between the
//! commit and the publication.

use std::sync::Arc;

use serde_json::{Map, Value};
use tidings_protocol::{
    Delete, Deleted, ErrorCode, ErrorPayload, FieldError, Read, ReadResult, Resource, Text, Update, Version,
};

use super::access::{has_any_role, Operation};
use super::before::{self, Change, Verdict};
use super::data::{apply_defaults, merge, validate};
use super::types::{ResourceTypeDef, ResourceTypes};
mod batch;
mod create;
mod list;
mod topics;

pub use create::{Created, QueuedCreate};
pub use topics::{EventTopic, Opened, ReplayPage};

use crate::auth::Identity;
use crate::detached::detached;
use crate::errors::{forbidden, internal, invalid_params, not_found, storage_error};
use crate::notifications::Notifier;
use crate::relay::Relay;
use crate::storage::{
    DeleteCheck, EventRecord, IdempotencyKey, Record, Storage, StorageError, UpdateCheck, UpdateOutcome,
};

/// The resource operations of one server.
#[derive(Debug, Clone)]
pub struct Resources {
    types: Arc<ResourceTypes>,
    storage: Arc<dyn Storage>,
    relay: Arc<Relay>,
    notifier: Arc<Notifier>,
}

/// The old values of the fields an update's owner notification watches, filled in by its check.
type Watched = Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// An update checked before storage: its type, the check storage runs, and what the check saw for the owner
/// notification.
struct CheckedUpdate {
    def: Arc<ResourceTypeDef>,
    check: UpdateCheck,
    watched: Watched,
}

impl Resources {
    /// The operations over `types`, stored in `storage`, their events published through `relay`.
    pub fn new(
        types: Arc<ResourceTypes>,
        storage: Arc<dyn Storage>,
        relay: Arc<Relay>,
        notifier: Arc<Notifier>,
    ) -> Self {
        Resources { types, storage, relay, notifier }
    }

    /// The resource types.
    pub fn types(&self) -> &ResourceTypes {
        &self.types
    }

    /// Hands a committed event to this node's hub and to the other nodes.
    fn publish(&self, event: EventRecord) {
        self.relay.event(event);
    }

    /// The receipt of an earlier create or batch with `key`, if one was committed within the window.
    async fn receipt(&self, key: Option<&IdempotencyKey>, what: &str) -> Result<Option<String>, ErrorPayload> {
        let Some(key) = key else { return Ok(None) };
        match self.storage.receipt(key).await {
            Ok(receipt) => Ok(receipt),
            Err(StorageError::KeyReused) => Err(key_reused()),
            Err(e) => Err(storage_error(e, what, None)),
        }
    }

    /// `read`: one resource when it names an id, otherwise a page of those the user may see.
    pub async fn read(&self, who: &Identity, read: Read) -> Result<ReadResult, ErrorPayload> {
        match &read.id {
            Some(id) => self.read_one(who, read.resource_type.as_str(), id.as_str()).await.map(ReadResult::One),
            None => self.list(who, read).await.map(ReadResult::List),
        }
    }

    /// One resource by id, if `who` may read it; NOT_FOUND both when it does not exist and when they may not.
    pub async fn read_one(&self, who: &Identity, resource_type: &str, id: &str) -> Result<Resource, ErrorPayload> {
        let def = self.type_of(resource_type)?;
        let record = self.storage.get(def.name(), id).await.map_err(|e| storage_error(e, def.name(), Some(id)))?;
        match record {
            Some(record) if def.allows(Operation::Read, who, Some(&record), None) => shown(def, who, record),
            _ => Err(not_found(def.name(), id)),
        }
    }

    /// `update`: applies a merge patch, under the type's rules, optionally at an expected version.
    pub async fn update(&self, who: &Identity, update: Update) -> Result<Resource, ErrorPayload> {
        let (this, who) = (self.clone(), who.clone());
        detached(async move { this.update_now(&who, update).await }).await
    }

    async fn update_now(&self, who: &Identity, update: Update) -> Result<Resource, ErrorPayload> {
        let (name, id) = (update.resource_type.as_str().to_owned(), update.id.as_str().to_owned());
        let checked = self.checked_update(who, update).await?;
        match self.storage.update(&name, &id, &who.user_id, checked.check).await {
            Ok(UpdateOutcome::Changed(record, event)) => {
                self.publish(event);
                self.updated(&record, who, &checked.watched).await;
                shown(&checked.def, who, record)
            }
            Ok(UpdateOutcome::Unchanged(record)) => shown(&checked.def, who, record),
            Err(e) => Err(storage_error(e, &name, Some(&id))),
        }
    }

    /// What follows a committed update by `who`: the built-in owner notification, when another user changed a
    /// watched field.
    async fn updated(&self, record: &Record, who: &Identity, watched: &Watched) {
        let old = std::mem::take(&mut *watched.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if record.owner_id != who.user_id {
            self.notifier.notify_owner(record, old).await;
        }
    }

    /// An update by `who`, checked as far as it can be before storage (server-set fields, the before-commit
    /// hook), and the check that decides it on the stored resource inside the transaction.
    async fn checked_update(&self, who: &Identity, update: Update) -> Result<CheckedUpdate, ErrorPayload> {
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
        let checked_def = Arc::clone(&def);
        // With a before-commit hook, the hook sees the change first, and the commit holds only at the version it saw.
        let asked = match def.before.as_ref().filter(|before| before.sees("update")) {
            None => None,
            Some(before) => {
                let current = self.current(&def, who, &id).await?;
                check_version(expected, &current)?;
                let merged = merge(&current.data, &patch);
                let change = Change {
                    operation: "update",
                    resource_type: &name,
                    who,
                    data: Some(&merged),
                    patch: Some(&patch),
                    resource: Some(&current),
                };
                match before::ask(before, change).await {
                    Verdict::Refuse(error) => return Err(error),
                    Verdict::Proceed(rewritten) => Some((current.version, rewritten)),
                }
            }
        };
        // What the built-in owner notification needs from inside the transaction: the watched fields' old values.
        let watched: Watched = Arc::default();
        let seen = Arc::clone(&watched);
        let notify_on = def.config.notify_owner_on.clone();
        let check: UpdateCheck = Box::new(move |current: &Record| {
            let who = &who_owned;
            if !def.allows(Operation::Read, who, Some(current), None) {
                return Err(not_found(def.name(), &current.id));
            }
            check_version(expected, current)?;
            if let Some((version, _)) = &asked {
                hook_saw(*version, current)?;
            }
            let data = match &asked {
                Some((_, Some(rewritten))) => rewritten.clone(),
                _ => merge(&current.data, &patch),
            };
            // The update rule sees the fields the patch changes, with their new values (null when removed).
            let changed: Map<String, Value> = patch
                .keys()
                .filter(|field| data.get(*field) != current.data.get(*field))
                .map(|field| (field.clone(), data.get(field).cloned().unwrap_or(Value::Null)))
                .collect();
            if !def.allows(Operation::Update, who, Some(current), Some(&changed)) {
                return Err(forbidden(format!("you may not make this change to this {}", def.name())));
            }
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
                if !def.may_write_field(who, field) {
                    refused.push(FieldError::new(format!("/patch/{field}"), "is not a field you may change"));
                } else if let Some(roles) = def.config.field_roles.get(field) {
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
        Ok(CheckedUpdate { def: checked_def, check, watched })
    }

    /// `delete`: removes a resource under the type's rules, optionally at an expected version.
    pub async fn delete(&self, who: &Identity, delete: Delete) -> Result<Deleted, ErrorPayload> {
        let (this, who) = (self.clone(), who.clone());
        detached(async move { this.delete_now(&who, delete).await }).await
    }

    async fn delete_now(&self, who: &Identity, delete: Delete) -> Result<Deleted, ErrorPayload> {
        let (name, id) = (delete.resource_type.as_str().to_owned(), delete.id.as_str().to_owned());
        let check = self.checked_delete(who, &delete).await?;
        let event = self
            .storage
            .delete(&name, &id, &who.user_id, check)
            .await
            .map_err(|e| storage_error(e, &name, Some(&id)))?;
        let (version, deleted_at) = (Version::new(event.version), event.occurred_at);
        self.publish(event);
        Ok(Deleted {
            resource_type: delete.resource_type,
            id: delete.id,
            version: version.map_err(|_| internal("a version out of range"))?,
            deleted_at,
        })
    }

    /// A deletion by `who`, asked of the before-commit hook, and the check that decides it on the stored
    /// resource inside the transaction.
    async fn checked_delete(&self, who: &Identity, delete: &Delete) -> Result<DeleteCheck, ErrorPayload> {
        let def = Arc::clone(self.type_of(delete.resource_type.as_str())?);
        let (name, id) = (def.name().to_owned(), delete.id.as_str().to_owned());
        let who_owned = who.clone();
        let expected = delete.expected_version;
        let asked = match def.before.as_ref().filter(|before| before.sees("delete")) {
            None => None,
            Some(before) => {
                let current = self.current(&def, who, &id).await?;
                check_version(expected, &current)?;
                let change = Change {
                    operation: "delete",
                    resource_type: &name,
                    who,
                    data: None,
                    patch: None,
                    resource: Some(&current),
                };
                match before::ask(before, change).await {
                    Verdict::Refuse(error) => return Err(error),
                    Verdict::Proceed(_) => Some(current.version),
                }
            }
        };
        Ok(Box::new(move |current: &Record| {
            if !def.allows(Operation::Read, &who_owned, Some(current), None) {
                return Err(not_found(def.name(), &current.id));
            }
            if !def.allows(Operation::Delete, &who_owned, Some(current), None) {
                return Err(forbidden(format!("you may not delete this {}", def.name())));
            }
            if let Some(version) = asked {
                hook_saw(version, current)?;
            }
            check_version(expected, current)
        }))
    }

    /// The stored resource `id`, if `who` may read it (NOT_FOUND otherwise, as for one that does not exist).
    async fn current(&self, def: &ResourceTypeDef, who: &Identity, id: &str) -> Result<Record, ErrorPayload> {
        let record = self.storage.get(def.name(), id).await.map_err(|e| storage_error(e, def.name(), Some(id)))?;
        record
            .filter(|record| def.allows(Operation::Read, who, Some(record), None))
            .ok_or_else(|| not_found(def.name(), id))
    }

    fn type_of(&self, name: &str) -> Result<&Arc<ResourceTypeDef>, ErrorPayload> {
        self.types.get(name).ok_or_else(|| {
            ErrorPayload::new(ErrorCode::NotFound, format!("there is no resource type '{name}'"))
                .with_detail("resourceType", name)
        })
    }
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
        let is_default = def.default_of(field) == data.get(field);
        if !is_default && !def.may_write_field(who, field) {
            refused.push(FieldError::new(format!("/data/{field}"), "is not a field you may set"));
        } else if let Some(roles) = def.config.field_roles.get(field) {
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

/// The reply to a create whose requestId was used for another create.
fn key_reused() -> ErrorPayload {
    ErrorPayload::new(
        ErrorCode::Conflict,
        "this requestId was already used for a different create; use a new requestId",
    )
    .with_detail("reason", "request_id_reused")
}

/// The data a before-commit hook wrote instead, which must still be valid for the type.
fn rewritten_by_hook(def: &ResourceTypeDef, data: Map<String, Value>) -> Result<Map<String, Value>, ErrorPayload> {
    let errors = validate(def, &data, "/data");
    if !errors.is_empty() {
        return Err(invalid_params(
            format!("the before-commit hook of {} wrote an invalid {}", def.name(), def.name()),
            errors,
        ));
    }
    Ok(data)
}

/// Refuses a change of a resource that moved on while its before-commit hook was asked about it.
fn hook_saw(version: u64, current: &Record) -> Result<(), ErrorPayload> {
    if current.version == version {
        return Ok(());
    }
    let message =
        format!("the {} changed while its before-commit hook was asked; send the change again", current.resource_type);
    Err(ErrorPayload::new(ErrorCode::Conflict, message).with_detail("currentVersion", current.version))
}

fn check_version(expected: Option<Version>, current: &Record) -> Result<(), ErrorPayload> {
    crate::errors::version_conflict(expected, &current.resource_type, current.version)
}

/// How many more ids a create draws when the one it drew is taken.
const ID_DRAWS: usize = 3;

/// A new id: the type's prefix and a ULID, such as `ORD-01JF6Z7Y3V8K2M4N6P8Q0R2S4T`: 48 bits of the time in
/// milliseconds, so that ids sort by when they were made, then 80 random bits, so that two ids collide about once
/// in 2^40 draws made within the same millisecond (docs/protocol.md, "Resources").
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", ulid(tidings_protocol::now_ms(), rand::random::<u128>()))
}

/// The 26 Crockford base32 characters of a ULID: `time_ms` (its low 48 bits) followed by 80 bits of `random`.
fn ulid(time_ms: u64, random: u128) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let random = random & ((1_u128 << 80) - 1);
    let value = (u128::from(time_ms & ((1 << 48) - 1)) << 80) | random;
    (0..26).rev().map(|n| ALPHABET[((value >> (n * 5)) & 31) as usize] as char).collect()
}

/// The protocol's resource for a stored record, as `who` may see it: without the fields a field rule hides from
/// them.
fn shown(def: &ResourceTypeDef, who: &Identity, record: Record) -> Result<Resource, ErrorPayload> {
    let mut shown = resource(record)?;
    for field in def.hidden_fields(who).iter().flat_map(|hidden| hidden.iter()) {
        shown.data.remove(field);
    }
    Ok(shown)
}

/// The protocol's resource for a stored record.
pub(crate) fn resource(record: Record) -> Result<Resource, ErrorPayload> {
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

#[cfg(test)]
mod tests {
    use super::{new_id, ulid};

    #[test]
    fn ids_carry_the_time_then_eighty_random_bits_and_sort_by_time() {
        assert_eq!(ulid(0, 0), "00000000000000000000000000");
        assert_eq!(ulid(u64::MAX, u128::MAX), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "48 bits of time, 80 of chance");
        // The random part takes the last 16 characters (80 bits) and leaves the time's 10 alone.
        assert_eq!(&ulid(1, u128::MAX)[..10], "0000000001");
        assert_eq!(&ulid(1, u128::MAX)[10..], "ZZZZZZZZZZZZZZZZ");
        assert!(ulid(1_700_000_000_000, u128::MAX) < ulid(1_700_000_000_001, 0), "later ids sort after");
        let ids: std::collections::BTreeSet<String> = (0..1000).map(|_| new_id("ORD")).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 30 && id.starts_with("ORD-")), "{ids:?}");
    }
}
