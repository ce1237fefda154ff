//! Resource types ready to serve: the config's `[[resource_types]]`, checked and compiled once at start.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tidings_protocol::{ResourceType, Topic};

use super::access::{compile as compile_rule, Operation, Rule};
use super::before::BeforeHook;
use crate::auth::Identity;
use crate::config::ResourceTypeConfig;
use crate::hub::Scope;
use crate::query::Subject;
use crate::storage::Record;

/// A resource type ready to serve: its config, compiled schema and parsed rules.
#[derive(Debug)]
pub struct ResourceTypeDef {
    /// What the config says.
    pub config: ResourceTypeConfig,
    /// The compiled schema of `data`.
    pub validator: jsonschema::Validator,
    /// The compiled permissions.
    pub rules: Rules,
    /// Its before-commit hook, if it has one.
    pub before: Option<BeforeHook>,
}

/// The compiled permissions of a type, one rule per operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// Who may create.
    pub create: Rule,
    /// Who may read, list and subscribe, and what they see.
    pub read: Rule,
    /// Who may update.
    pub update: Rule,
    /// Who may delete.
    pub delete: Rule,
    /// Who may read and write single fields, by field name.
    pub fields: Vec<FieldRule>,
}

/// Who may read and write one top-level field (`None`: everyone).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldRule {
    /// The field.
    pub field: String,
    /// Who may see it.
    pub read: Option<Rule>,
    /// Who may set or change it.
    pub write: Option<Rule>,
}

impl ResourceTypeDef {
    /// The type's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The schema default of a top-level field, if it has one.
    pub fn default_of(&self, field: &str) -> Option<&Value> {
        self.config.schema.get("properties")?.get(field)?.get("default")
    }

    /// Whether `field` is a top-level property of the schema (the fields lists may filter and order by).
    pub fn declares(&self, field: &str) -> bool {
        self.config.schema.get("properties").and_then(|p| p.get(field)).is_some()
    }

    /// The fields `who` may not see: removed from every resource and event they receive; `None` when there are
    /// none (most users of most types).
    pub fn hidden_fields(&self, who: &Identity) -> Option<Arc<[String]>> {
        let hidden: Vec<String> = self
            .rules
            .fields
            .iter()
            .filter(|rule| rule.read.as_ref().is_some_and(|read| !read.holds_for(who)))
            .map(|rule| rule.field.clone())
            .collect();
        (!hidden.is_empty()).then(|| Arc::from(hidden))
    }

    /// Whether `who` may set or change `field`.
    pub fn may_write_field(&self, who: &Identity, field: &str) -> bool {
        let rule = self.rules.fields.iter().find(|rule| rule.field == field);
        rule.and_then(|rule| rule.write.as_ref()).is_none_or(|write| write.holds_for(who))
    }

    /// What `who` may see of the type by its read rule; `None` for nothing.
    pub fn scope(&self, who: &Identity) -> Option<Scope> {
        self.rules.read.scope(who, &self.config.schema)
    }

    /// Whether the rule of `operation` lets `who` act on `record` (none for a create) with `incoming` data (the
    /// data of a create, the changed fields of an update).
    pub fn allows(
        &self,
        operation: Operation,
        who: &Identity,
        record: Option<&Record>,
        incoming: Option<&Map<String, Value>>,
    ) -> bool {
        let rule = match operation {
            Operation::Create => &self.rules.create,
            Operation::Read => &self.rules.read,
            Operation::Update => &self.rules.update,
            Operation::Delete => &self.rules.delete,
            // A field's rules are asked through `hidden_fields` and `may_write_field`.
            Operation::Field => return false,
        };
        rule.allows(who, record.map(Subject::of), incoming, &self.config.schema)
    }

    /// The JSON type the schema gives a top-level field (`string`, `number`, ...), if it gives one.
    pub fn field_type(&self, field: &str) -> Option<&str> {
        self.config.schema.get("properties")?.get(field)?.get("type")?.as_str()
    }
}

/// Every resource type of a server, by name.
#[derive(Debug, Clone, Default)]
pub struct ResourceTypes(HashMap<String, Arc<ResourceTypeDef>>);

impl ResourceTypes {
    /// Checks and compiles the configured types; any mistake is an error naming the type and the field.
    pub fn compile(configs: &[ResourceTypeConfig]) -> anyhow::Result<ResourceTypes> {
        let mut types = HashMap::new();
        for config in configs {
            let def = compile(config).map_err(|e| anyhow::anyhow!("resource type '{}': {e}", config.name))?;
            anyhow::ensure!(
                types.insert(config.name.clone(), Arc::new(def)).is_none(),
                "resource type '{}' is declared twice",
                config.name
            );
        }
        Ok(ResourceTypes(types))
    }

    /// The type named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<ResourceTypeDef>> {
        self.0.get(name)
    }

    /// The names of all types.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

fn compile(config: &ResourceTypeConfig) -> anyhow::Result<ResourceTypeDef> {
    anyhow::ensure!(ResourceType::new(config.name.clone()).is_ok(), "the name {}", ResourceType::REASON);
    anyhow::ensure!(
        config.name != Topic::NOTIFICATIONS,
        "the name 'notifications' is reserved for the notifications topic"
    );
    anyhow::ensure!(config.name != Topic::PRESENCE, "the name 'presence' is reserved for presence members");
    let prefix_ok = (1..=16).contains(&config.id_prefix.len())
        && config.id_prefix.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    anyhow::ensure!(prefix_ok, "id_prefix must be 1 to 16 capital letters or digits");
    anyhow::ensure!(!config.schema.is_null(), "needs a schema (a JSON Schema of data) or a schema_file");
    if let Some(before) = &config.before {
        before.check(&config.name)?;
    }
    anyhow::ensure!(
        config.schema.get("type") == Some(&json!("object")),
        "schema must describe an object (\"type\": \"object\")"
    );
    let validator = jsonschema::draft7::new(&config.schema).map_err(|e| anyhow::anyhow!("schema: {e}"))?;
    let properties = config.schema.get("properties").and_then(Value::as_object);
    let declared = |field: &String| properties.is_some_and(|p| p.contains_key(field));
    let fields = config.read_only.iter().chain(&config.server_set).chain(config.field_roles.keys());
    let fields = fields.chain(config.field_rules.keys());
    for field in fields.chain(&config.notify_owner_on) {
        anyhow::ensure!(declared(field), "field '{field}' is not a property of the schema");
    }
    for path in &config.indexes {
        let mut at = &config.schema;
        for name in path.split('.') {
            let valid = tidings_protocol::FieldName::new(name).is_ok() && path.split('.').count() <= 8;
            anyhow::ensure!(valid, "index '{path}' must be 1 to 8 field names joined by '.'");
            at = at
                .get("properties")
                .and_then(|p| p.get(name))
                .ok_or_else(|| anyhow::anyhow!("index '{path}': '{name}' is not a property of the schema"))?;
        }
    }
    for field in &config.server_set {
        let has_default = properties.and_then(|p| p.get(field)).and_then(|f| f.get("default")).is_some();
        anyhow::ensure!(has_default, "server_set field '{field}' needs a default in the schema");
    }
    let permissions = &config.permissions;
    let schema = &config.schema;
    let rules = Rules {
        create: compile_rule(&permissions.create, Operation::Create, schema, "permissions.create")?,
        read: compile_rule(&permissions.read, Operation::Read, schema, "permissions.read")?,
        update: compile_rule(&permissions.update, Operation::Update, schema, "permissions.update")?,
        delete: compile_rule(&permissions.delete, Operation::Delete, schema, "permissions.delete")?,
        fields: config
            .field_rules
            .iter()
            .map(|(field, rules)| {
                let compile = |entries: &Option<Vec<Value>>, what: &str| {
                    let at = format!("field_rules.{field}.{what}");
                    entries.as_deref().map(|entries| compile_rule(entries, Operation::Field, schema, &at)).transpose()
                };
                Ok(FieldRule {
                    field: field.clone(),
                    read: compile(&rules.read, "read")?,
                    write: compile(&rules.write, "write")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    let before = config.before.clone().map(BeforeHook::new);
    Ok(ResourceTypeDef { config: config.clone(), validator, rules, before })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_types;

    #[test]
    fn the_default_order_type_compiles() {
        let types = ResourceTypes::compile(&default_types()).expect("compiles");
        let order = types.get("order").expect("order");
        assert_eq!(order.default_of("status"), Some(&json!("pending")));
        assert!(order.declares("quantity") && !order.declares("owner"));
    }

    #[test]
    fn mistakes_in_a_type_are_refused_with_their_reason() {
        let mut bad = default_types();
        bad[0].name = "notifications".to_owned();
        assert!(ResourceTypes::compile(&bad).expect_err("refused").to_string().contains("reserved"));
        let mut bad = default_types();
        bad[0].field_roles.insert("colour".to_owned(), vec!["admin".to_owned()]);
        assert!(ResourceTypes::compile(&bad).expect_err("refused").to_string().contains("colour"));
        let mut bad = default_types();
        bad[0].permissions.read = vec![json!("everyone")];
        assert!(ResourceTypes::compile(&bad).expect_err("refused").to_string().contains("everyone"));
        let mut bad = default_types();
        bad[0].indexes = vec!["customer.city".to_owned()];
        assert!(ResourceTypes::compile(&bad).expect_err("refused").to_string().contains("customer"));
        let mut twice = default_types();
        twice.extend(default_types());
        assert!(ResourceTypes::compile(&twice).is_err());
    }
}
