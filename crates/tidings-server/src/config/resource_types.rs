//! The settings of one resource type (`[[resource_types]]`): its schema, fields, rules, hooks and indexes, and the
//! `order` type a server without configured types offers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::BeforeHookConfig;

/// One `[[resource_types]]` entry of the config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceTypeConfig {
    /// The type's name, such as `order`.
    pub name: String,
    /// The start of every id, such as `ORD` for `ORD-7K3M9Q2XAB`.
    pub id_prefix: String,
    /// The JSON Schema (draft-07) of `data`; its top-level `default`s fill missing fields on create. Give this or
    /// `schema_file`.
    #[serde(default)]
    pub schema: Value,
    /// A file holding the JSON Schema of `data`, relative to the config file: each type's schema in its own file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_file: Option<PathBuf>,
    /// Fields a client may set on create but never change.
    #[serde(default)]
    pub read_only: Vec<String>,
    /// Fields no client may set: they take their schema default.
    #[serde(default)]
    pub server_set: Vec<String>,
    /// Fields that only holders of one of these roles may set or change (others get their default on create).
    #[serde(default)]
    pub field_roles: BTreeMap<String, Vec<String>>,
    /// Who may read and who may write a top-level field, judged on the user alone (`auth`): a field a user may
    /// not read is removed from every resource and event they receive, and their queries may not name it.
    #[serde(default)]
    pub field_rules: BTreeMap<String, FieldRulesConfig>,
    /// Who may create, read, update and delete.
    #[serde(default)]
    pub permissions: PermissionsConfig,
    /// A hook called with each change before it is committed, to accept, reject or rewrite it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<BeforeHookConfig>,
    /// Fields whose change notifies the resource's owner (when someone else changes them).
    #[serde(default)]
    pub notify_owner_on: Vec<String>,
    /// Data fields that queries compare often, as paths (`status`, `customer.city`): each gets an index, so that
    /// a list by equality or range on it reads the index rather than every resource of the type.
    #[serde(default)]
    pub indexes: Vec<String>,
    /// Whether the events of an update carry `previousData`, the resource's data before the change (for audit
    /// logs, notifications and webhooks that compare), to subscribers, the event feed and webhooks alike.
    #[serde(default)]
    pub previous_data: bool,
    /// An ephemeral type stores nothing: a `create` of it is checked, then fanned out at once to the subscribers
    /// of its topic as an event without `seq`, and forgotten (broadcast: no resume, no read, no retry).
    #[serde(default)]
    pub ephemeral: bool,
}

/// Who may read and who may write one field: lists of shorthands (`authenticated`, `role:NAME`) and rules over
/// `auth`; an absent list allows everyone, an empty one nobody.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRulesConfig {
    /// Who may see the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Vec<Value>>,
    /// Who may set or change it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<Vec<Value>>,
}

/// Who may do what, per operation a list of shorthands and rules; any one entry suffices, an empty list allows
/// nobody, and an operation left out keeps its default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PermissionsConfig {
    /// Who may create: each entry a shorthand (`authenticated`, `owner`, `role:NAME`) or a rule in the query
    /// language over `auth` and `data` (docs/resource-types.md); any one that holds allows.
    pub create: Vec<Value>,
    /// Who may read (one resource, lists, subscriptions): shorthands or rules over `auth` and `resource`.
    pub read: Vec<Value>,
    /// Who may update: shorthands or rules over `auth`, `resource` and `data` (the fields the change sets).
    pub update: Vec<Value>,
    /// Who may delete: shorthands or rules over `auth` and `resource`.
    pub delete: Vec<Value>,
}

impl Default for PermissionsConfig {
    fn default() -> Self {
        let owner_or_admin = vec![Value::from("owner"), Value::from("role:admin")];
        PermissionsConfig {
            create: vec![Value::from("authenticated")],
            read: owner_or_admin.clone(),
            update: owner_or_admin.clone(),
            delete: owner_or_admin,
        }
    }
}

impl ResourceTypeConfig {
    /// Reads `schema_file` (relative to `base`, the config file's folder) into `schema`.
    pub(super) fn read_schema_file(&mut self, base: &Path) -> anyhow::Result<()> {
        let Some(file) = &self.schema_file else { return Ok(()) };
        anyhow::ensure!(self.schema.is_null(), "resource type '{}': give schema or schema_file, not both", self.name);
        let path = base.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("resource type '{}': cannot read {}: {e}", self.name, path.display()))?;
        self.schema = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("resource type '{}': {} is not JSON: {e}", self.name, path.display()))?;
        Ok(())
    }
}

/// The design notes' `order`: what `tidings serve` offers with no config.
pub fn default_types() -> Vec<ResourceTypeConfig> {
    vec![ResourceTypeConfig {
        name: "order".to_owned(),
        id_prefix: "ORD".to_owned(),
        schema: json!({
            "type": "object",
            "properties": {
                "productId": { "type": "string", "minLength": 1, "maxLength": 128 },
                "quantity": { "type": "integer", "minimum": 1 },
                "totalAmount": { "type": "number", "minimum": 0 },
                "status": { "type": "string", "enum": ["pending", "paid", "shipped", "cancelled"], "default": "pending" }
            },
            "required": ["productId", "quantity", "totalAmount", "status"]
        }),
        read_only: Vec::new(),
        server_set: Vec::new(),
        field_roles: BTreeMap::from([("status".to_owned(), vec!["admin".to_owned()])]),
        permissions: PermissionsConfig::default(),
        notify_owner_on: vec!["status".to_owned()],
        field_rules: BTreeMap::new(),
        before: None,
        indexes: vec!["status".to_owned()],
        schema_file: None,
        previous_data: false,
        ephemeral: false,
    }]
}
