//! Who may do what to a resource: a type's access rules, written in the query language over the signed-in user
//! (`auth`), the stored resource (`resource`) and the incoming change (`data`), as docs/resource-types.md says.
//!
//! A rule is checked against the type's schema once, when the server starts. For one user (and, for a write, one
//! change) it is *specialized*: every term on `auth` or `data` is decided, every `{"auth": ...}` operand replaced
//! by the user's value, and what is left is a plain [`Condition`] on resources. That one condition is what a list
//! runs as SQL, what a read or a write tests on the stored record, and what the hub tests on every event, so one
//! rule means the same everywhere, and the fan-out never reads storage or claims per event.
//!
//! A term whose value or operand is missing (a claim the token lacks, a field the change does not set) is
//! *unmatched*, as in queries: false, so that its `ne`, `nin` and `not` hold. Rules are best written positively.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tidings_protocol::{Op, Term};

use crate::auth::Identity;
use crate::hub::Scope;
use crate::query::{self, Condition, Subject};

/// The operations rules govern; a read rule governs single reads, lists and subscriptions alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `create`: may name `auth` and `data` (there is no stored resource yet).
    Create,
    /// `read`, lists and subscriptions: may name `auth` and `resource`.
    Read,
    /// `update`: may name `auth`, `resource` (as stored) and `data` (the fields the change sets).
    Update,
    /// `delete`: may name `auth` and `resource`.
    Delete,
    /// Who may read or write a field: may name `auth` only, so that it is decided once per user.
    Field,
}

impl Operation {
    fn sees_resource(self) -> bool {
        !matches!(self, Operation::Create | Operation::Field)
    }

    fn sees_data(self) -> bool {
        matches!(self, Operation::Create | Operation::Update)
    }
}

/// A compiled rule: the shorthands and expressions of one operation, any of which allows.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// Every one holds.
    All(Vec<Rule>),
    /// At least one holds.
    Any(Vec<Rule>),
    /// This does not hold.
    Not(Box<Rule>),
    /// One test.
    Term(RuleTerm),
}

/// One test of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleTerm {
    on: On,
    op: Op,
    operand: Operand,
}

/// What a term tests.
#[derive(Clone, Debug, PartialEq)]
enum On {
    /// A value of the signed-in user.
    Auth(AuthPath),
    /// A field of the stored resource, as a query names it (`ownerId`, `data.orgId`).
    Resource(String),
    /// A field of the incoming data, by path.
    Data(Vec<String>),
}

/// A value of the signed-in user: `auth.sub`, `auth.roles`, or a claim by path.
#[derive(Clone, Debug, PartialEq)]
enum AuthPath {
    Sub,
    Roles,
    Claim(Vec<String>),
}

/// What a term compares with: a value written in the rule, or one of the user's.
#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Literal(Value),
    Auth(AuthPath),
}

const OPERATORS: [Op; 11] =
    [Op::Eq, Op::Ne, Op::Lt, Op::Lte, Op::Gt, Op::Gte, Op::In, Op::Nin, Op::Exists, Op::Prefix, Op::Contains];

/// Compiles the entries of one operation's permission list (shorthands and rules) into one rule, checked against
/// the type's `schema`; `at` names the list in errors (`permissions.read`).
pub fn compile(entries: &[Value], operation: Operation, schema: &Value, at: &str) -> anyhow::Result<Rule> {
    let mut any = Vec::with_capacity(entries.len());
    for (n, entry) in entries.iter().enumerate() {
        let at = format!("{at}[{n}]");
        any.push(match entry {
            Value::String(shorthand) => {
                shorthand_rule(shorthand, operation).map_err(|e| anyhow::anyhow!("{at}: {e}"))?
            }
            _ => expression(entry, operation, schema, &at, 0)?,
        });
    }
    Ok(Rule::Any(any))
}

/// `authenticated`, `owner` and `role:NAME` as the rules they stand for.
fn shorthand_rule(shorthand: &str, operation: Operation) -> anyhow::Result<Rule> {
    let term = |on, op, operand| Rule::Term(RuleTerm { on, op, operand });
    match shorthand {
        "authenticated" => Ok(Rule::All(Vec::new())),
        // The creator of a resource becomes its owner, so anyone may create as an owner.
        "owner" if operation == Operation::Create => Ok(Rule::All(Vec::new())),
        "owner" if operation == Operation::Field => anyhow::bail!("a field rule names the user only: not owner"),
        "owner" => Ok(term(On::Resource("ownerId".to_owned()), Op::Eq, Operand::Auth(AuthPath::Sub))),
        other => match other.strip_prefix("role:") {
            Some(role) if !role.is_empty() => {
                Ok(term(On::Auth(AuthPath::Roles), Op::Contains, Operand::Literal(Value::from(role))))
            }
            _ => anyhow::bail!("permission '{other}' must be authenticated, owner, role:NAME or a rule"),
        },
    }
}

fn expression(value: &Value, operation: Operation, schema: &Value, at: &str, depth: usize) -> anyhow::Result<Rule> {
    anyhow::ensure!(depth < 16, "{at}: a rule nests at most 16 levels");
    let Some(object) = value.as_object() else {
        anyhow::bail!("{at}: must be a shorthand (a string) or a rule (a table)");
    };
    let many = |key: &str| -> anyhow::Result<Vec<Rule>> {
        let items = object[key].as_array().filter(|items| !items.is_empty());
        let items = items.ok_or_else(|| anyhow::anyhow!("{at}.{key}: must be a non-empty list of rules"))?;
        let nested = items.iter().enumerate();
        nested.map(|(n, item)| expression(item, operation, schema, &format!("{at}.{key}[{n}]"), depth + 1)).collect()
    };
    if object.len() == 1 && object.contains_key("and") {
        return Ok(Rule::All(many("and")?));
    }
    if object.len() == 1 && object.contains_key("or") {
        return Ok(Rule::Any(many("or")?));
    }
    if object.len() == 1 && object.contains_key("not") {
        let not = expression(&object["not"], operation, schema, &format!("{at}.not"), depth + 1)?;
        return Ok(Rule::Not(Box::new(not)));
    }
    let term = term(object, operation, at)?;
    check_term(&term, schema, at)?;
    Ok(Rule::Term(term))
}

fn term(object: &Map<String, Value>, operation: Operation, at: &str) -> anyhow::Result<RuleTerm> {
    let field = object.get("field").and_then(Value::as_str);
    let field = field.ok_or_else(|| anyhow::anyhow!("{at}: must be and, or, not, or a term with a field"))?;
    let ops: Vec<Op> = OPERATORS.into_iter().filter(|op| object.contains_key(op.name())).collect();
    let [op] = ops[..] else {
        anyhow::bail!("{at}: a term has a field and exactly one operator (eq, ne, lt, lte, gt, gte, in, nin, exists, prefix, contains)");
    };
    if let Some(unknown) = object.keys().find(|key| *key != "field" && *key != op.name()) {
        anyhow::bail!("{at}: unknown key '{unknown}'");
    }
    let on = if let Some(path) = field.strip_prefix("auth.") {
        On::Auth(auth_path(path).ok_or_else(|| anyhow::anyhow!("{at}.field: {AUTH_PATHS}"))?)
    } else if let Some(path) = field.strip_prefix("resource.") {
        anyhow::ensure!(operation != Operation::Field, "{at}.field: a field rule names auth only");
        anyhow::ensure!(operation.sees_resource(), "{at}.field: a create rule cannot name resource (use data)");
        On::Resource(path.to_owned())
    } else if let Some(path) = field.strip_prefix("data.") {
        anyhow::ensure!(operation.sees_data(), "{at}.field: only create and update rules can name data");
        On::Data(path.split('.').map(str::to_owned).collect())
    } else {
        anyhow::bail!("{at}.field: must start with auth., resource. or data.");
    };
    let operand = match &object[op.name()] {
        Value::Object(reference) if reference.len() == 1 && reference.contains_key("auth") => {
            let path = reference["auth"].as_str().and_then(auth_path);
            Operand::Auth(path.ok_or_else(|| anyhow::anyhow!("{at}.{}.auth: {AUTH_PATHS}", op.name()))?)
        }
        literal => Operand::Literal(literal.clone()),
    };
    Ok(RuleTerm { on, op, operand })
}

const AUTH_PATHS: &str = "must be sub, roles, or claims followed by .NAME or [\"NAME\"] steps";

/// `sub`, `roles`, `claims.org`, `claims["https://example.com/tenant"]`, `claims.realm_access.roles`.
fn auth_path(path: &str) -> Option<AuthPath> {
    match path {
        "sub" => return Some(AuthPath::Sub),
        "roles" => return Some(AuthPath::Roles),
        _ => {}
    }
    let mut rest = path.strip_prefix("claims")?;
    let mut names = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[\"") {
            let end = after.find("\"]")?;
            names.push(after[..end].to_owned());
            rest = &after[end + 2..];
        } else {
            let after = rest.strip_prefix('.')?;
            let end = after.find(['.', '[']).unwrap_or(after.len());
            names.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    let valid = !names.is_empty() && names.len() <= 8 && names.iter().all(|name| !name.is_empty());
    valid.then_some(AuthPath::Claim(names))
}

/// Checks a term against the schema: its field exists, and a literal operand fits the field and the operator.
fn check_term(term: &RuleTerm, schema: &Value, at: &str) -> anyhow::Result<()> {
    let literal = match &term.operand {
        Operand::Literal(value) => Some(value.clone()),
        Operand::Auth(_) => None,
    };
    let (field, schema) = match &term.on {
        On::Resource(field) => (field.clone(), schema.clone()),
        On::Data(path) => (format!("data.{}", path.join(".")), schema.clone()),
        // The user's values have no schema: a literal is checked for its shape only.
        On::Auth(_) => ("data.value".to_owned(), json!({ "properties": { "value": {} } })),
    };
    // A term with the user's value as its operand is checked for its field with a stand-in of any type.
    let (op, operand) = match literal {
        Some(literal) => (term.op, literal),
        None => (Op::Exists, Value::Bool(true)),
    };
    let resolved = query_term(&field, op, operand).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    query::resolve_term(&resolved, &schema, "").map_err(|e| anyhow::anyhow!("{at}{}: {}", e.pointer, e.reason))?;
    Ok(())
}

/// The protocol term `{field, <op>: operand}`.
fn query_term(field: &str, op: Op, operand: Value) -> Result<Term, String> {
    let mut term = Map::new();
    term.insert("field".to_owned(), Value::from(field));
    term.insert(op.name().to_owned(), operand);
    serde_json::from_value(Value::Object(term)).map_err(|e| e.to_string())
}

impl Rule {
    /// This rule for `who` and, for a create or an update, the `incoming` data: a condition on the stored
    /// resource (true or false when the rule does not name it), whose terms compare with values of the type
    /// `schema` describes.
    pub fn specialize(&self, who: &Identity, incoming: Option<&Map<String, Value>>, schema: &Value) -> Condition {
        match self {
            Rule::All(all) => all_of(all.iter().map(|rule| rule.specialize(who, incoming, schema)).collect()),
            Rule::Any(any) => any_of(any.iter().map(|rule| rule.specialize(who, incoming, schema)).collect()),
            Rule::Not(not) => negated(not.specialize(who, incoming, schema)),
            Rule::Term(term) => term.specialize(who, incoming, schema),
        }
    }

    /// Whether `who` may do this to `record` (for a read, delete or update) with `incoming` data (for a create
    /// or update).
    pub fn allows(
        &self,
        who: &Identity,
        record: Option<Subject<'_>>,
        incoming: Option<&Map<String, Value>>,
        schema: &Value,
    ) -> bool {
        let condition = self.specialize(who, incoming, schema);
        match record {
            Some(record) => condition.matches(&record),
            None => condition == truth(true),
        }
    }

    /// Whether this rule, which names the user alone (a field rule), holds for `who`.
    pub fn holds_for(&self, who: &Identity) -> bool {
        self.specialize(who, None, &Value::Null) == truth(true)
    }

    /// How much of a type this read rule lets `who` see; `None` for nothing.
    pub fn scope(&self, who: &Identity, schema: &Value) -> Option<Scope> {
        match self.specialize(who, None, schema) {
            condition if condition == truth(true) => Some(Scope::All),
            condition if condition == truth(false) => None,
            // The owner rule has an index of its own in the hub, and a column in storage.
            Condition::Test(query::Field::OwnerId, query::Test::In(owners)) if owners.len() == 1 => match &owners[0] {
                query::Operand::Text(owner) => Some(Scope::Own(owner.clone())),
                _ => None,
            },
            condition => Some(Scope::Where(Arc::new(condition))),
        }
    }
}

impl RuleTerm {
    fn specialize(&self, who: &Identity, incoming: Option<&Map<String, Value>>, schema: &Value) -> Condition {
        let operand = match &self.operand {
            Operand::Literal(value) => Some(value.clone()),
            Operand::Auth(path) => auth_value(who, path),
        };
        // A missing operand is unmatched: the term is false, so its negations hold.
        let Some(operand) = operand else { return truth(matches!(self.op, Op::Ne | Op::Nin)) };
        match &self.on {
            On::Resource(field) => match query_term(field, self.op, operand) {
                Ok(term) => query::resolve_term(&term, schema, "")
                    .unwrap_or_else(|_| truth(matches!(self.op, Op::Ne | Op::Nin))),
                Err(_) => truth(matches!(self.op, Op::Ne | Op::Nin)),
            },
            On::Auth(path) => truth(holds(self.op, operand, auth_value(who, path))),
            On::Data(path) => truth(holds(self.op, operand, incoming.and_then(|data| at_path(data, path)).cloned())),
        }
    }
}

/// Whether `value` passes `op` with `operand`, by the query language's meaning (`query/eval.rs`).
fn holds(op: Op, operand: Value, value: Option<Value>) -> bool {
    let untyped = json!({ "properties": { "value": {} } });
    let condition = query_term("data.value", op, operand).ok().and_then(|t| query::resolve_term(&t, &untyped, "").ok());
    let Some(condition) = condition else { return matches!(op, Op::Ne | Op::Nin) };
    let data: Map<String, Value> = value.map(|value| ("value".to_owned(), value)).into_iter().collect();
    condition.matches(&Subject { id: "", owner_id: "", version: 0, created_at: 0, updated_at: 0, data: &data })
}

fn auth_value(who: &Identity, path: &AuthPath) -> Option<Value> {
    match path {
        AuthPath::Sub => Some(Value::from(who.user_id.as_str())),
        AuthPath::Roles => Some(Value::from(who.roles.clone())),
        AuthPath::Claim(names) => at_path(&who.claims, names).cloned(),
    }
}

fn at_path<'v>(data: &'v Map<String, Value>, path: &[String]) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    let mut value = data.get(first)?;
    for name in rest {
        value = value.as_object()?.get(name)?;
    }
    Some(value).filter(|value| !value.is_null())
}

/// The condition that always holds (`true`) or never does.
fn truth(value: bool) -> Condition {
    if value {
        Condition::All(Vec::new())
    } else {
        Condition::Any(Vec::new())
    }
}

fn all_of(parts: Vec<Condition>) -> Condition {
    if parts.contains(&truth(false)) {
        return truth(false);
    }
    let mut parts: Vec<Condition> = parts.into_iter().filter(|part| *part != truth(true)).collect();
    if parts.len() == 1 {
        return parts.remove(0);
    }
    Condition::All(parts)
}

fn any_of(parts: Vec<Condition>) -> Condition {
    if parts.contains(&truth(true)) {
        return truth(true);
    }
    let mut parts: Vec<Condition> = parts.into_iter().filter(|part| *part != truth(false)).collect();
    if parts.len() == 1 {
        return parts.remove(0);
    }
    Condition::Any(parts)
}

fn negated(condition: Condition) -> Condition {
    match condition {
        c if c == truth(true) => truth(false),
        c if c == truth(false) => truth(true),
        Condition::Not(inner) => *inner,
        c => Condition::Not(Box::new(c)),
    }
}

/// Whether `who` holds one of `roles`.
pub fn has_any_role(who: &Identity, roles: &[String]) -> bool {
    who.roles.iter().any(|r| roles.contains(r))
}

#[cfg(test)]
mod tests;
