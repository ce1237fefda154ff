//! Lists: a page of the resources a user may see, filtered and ordered, with an opaque cursor to the next page.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use tidings_protocol::{ErrorPayload, FieldError, Order, Read, Resource, ResourceList, Text};

use super::{resource, Resources};
use crate::auth::Identity;
use crate::errors::{forbidden, invalid_params, storage_error};
use crate::hub::Scope;
use crate::query::Condition;
use crate::resources::data::fingerprint;
use crate::storage::{ListQuery, Listed, OrderKey, Sort};

/// A list as storage runs it, and what its pages need: the page size asked for, and the id its cursors carry.
struct Plan {
    query: ListQuery,
    limit: usize,
    query_id: String,
    /// Only these data fields in the items.
    fields: Option<Vec<String>>,
    /// Count the whole list.
    count: bool,
    /// The fields a field rule hides from the user.
    hidden: Option<Arc<[String]>>,
}

/// Removes from `data` the fields hidden from the user.
fn hide(hidden: &Option<Arc<[String]>>, data: &mut Map<String, Value>) {
    for field in hidden.iter().flat_map(|hidden| hidden.iter()) {
        data.remove(field);
    }
}

impl Resources {
    /// `read` without an id: a page of the resources of the type that `who` may see (its `id` is not looked at).
    pub async fn list(&self, who: &Identity, read: Read) -> Result<ResourceList, ErrorPayload> {
        let plan = self.plan(who, &read)?;
        let name = plan.query.resource_type.clone();
        let total = match plan.count {
            true => Some(self.storage.count(plan.query.clone()).await.map_err(|e| storage_error(e, &name, None))?),
            false => None,
        };
        let page = self.storage.list(plan.query).await.map_err(|e| storage_error(e, &name, None))?;
        let (mut items, next_cursor) = page_of(page, plan.limit, &plan.query_id)?;
        for item in &mut items {
            if let Some(fields) = &plan.fields {
                item.data.retain(|name, _| fields.contains(name));
            }
            hide(&plan.hidden, &mut item.data);
        }
        Ok(ResourceList { resource_type: read.resource_type, items, next_cursor, total })
    }

    /// A query subscription's snapshot: the first page of `read` (by `createdAt`), exactly as of the `seq` it
    /// returns, with a cursor that `read` with the same query continues.
    pub async fn snapshot(
        &self,
        who: &Identity,
        read: &Read,
    ) -> Result<(Vec<Resource>, Option<Text<1, 512>>, u64), ErrorPayload> {
        let plan = self.plan(who, read)?;
        let name = plan.query.resource_type.clone();
        let (page, head) = self.storage.list_at_head(plan.query).await.map_err(|e| storage_error(e, &name, None))?;
        let (mut items, next_cursor) = page_of(page, plan.limit, &plan.query_id)?;
        for item in &mut items {
            hide(&plan.hidden, &mut item.data);
        }
        Ok((items, next_cursor, head))
    }

    /// Checks a list read and says how storage runs it.
    fn plan(&self, who: &Identity, read: &Read) -> Result<Plan, ErrorPayload> {
        let def = self.type_of(read.resource_type.as_str())?;
        // What the read rule lets this user see becomes part of the SQL, so that pages stay full.
        let (owner, visible) = match def.scope(who) {
            Some(Scope::All) => (None, None),
            Some(Scope::Own(owner)) => (Some(owner), None),
            Some(Scope::Where(condition)) => (None, Some(condition)),
            None => return Err(forbidden(format!("you may not list {}", def.name()))),
        };
        let mut errors = Vec::new();
        let mut filter = Vec::new();
        // A field the user may not see may not be filtered, ordered or queried by either: the answer would tell.
        let hidden = def.hidden_fields(who);
        let is_hidden = |field: &str| hidden.as_ref().is_some_and(|hidden| hidden.iter().any(|h| h == field));
        const HIDDEN: &str = "is a field you may not read";
        for (field, value) in read.filter.iter().flatten() {
            let value = serde_json::to_value(value).unwrap_or(Value::Null);
            if value.as_str().is_some_and(|text| text.contains('\0')) {
                // As in data: PostgreSQL cannot hold a NUL, so no stored value can equal one.
                errors.push(FieldError::new(format!("/filter/{field}"), "must not contain the NUL character"));
            } else if is_hidden(field.as_str()) {
                errors.push(FieldError::new(format!("/filter/{field}"), HIDDEN));
            } else if def.declares(field.as_str()) {
                filter.push((field.as_str().to_owned(), value));
            } else {
                errors.push(FieldError::new(format!("/filter/{field}"), format!("is not a field of {}", def.name())));
            }
        }
        let keys = read.order_by.as_ref().map_or(&[][..], Order::keys);
        let mut order = Vec::with_capacity(keys.len().max(1));
        for (n, order_by) in keys.iter().enumerate() {
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
            let pointer = match read.order_by {
                Some(Order::Many(_)) => format!("/orderBy/{n}"),
                _ => "/orderBy".to_owned(),
            };
            if is_hidden(order_by.field()) {
                errors.push(FieldError::new(pointer, HIDDEN));
                continue;
            }
            if keys[..n].iter().any(|earlier| earlier.field() == order_by.field()) {
                errors.push(FieldError::new(pointer, "orders by a field already named"));
                continue;
            }
            match key {
                Some(key) => order.push(Sort { key, descending: order_by.descending() }),
                None => errors.push(FieldError::new(
                    pointer,
                    format!("must be createdAt, updatedAt, id or a string or number field of {}", def.name()),
                )),
            }
        }
        if order.is_empty() {
            order.push(Sort::ascending(OrderKey::CreatedAt));
        }
        let fields = read.fields.as_ref().map(|fields| {
            for (n, field) in fields.iter().enumerate() {
                if !def.declares(field.as_str()) {
                    errors.push(FieldError::new(format!("/fields/{n}"), format!("is not a field of {}", def.name())));
                } else if is_hidden(field.as_str()) {
                    errors.push(FieldError::new(format!("/fields/{n}"), HIDDEN));
                }
            }
            fields.iter().map(|field| field.as_str().to_owned()).collect::<Vec<_>>()
        });
        let condition = match &read.query {
            None => None,
            Some(query) => match crate::query::check(query, &def.config.schema, "/query") {
                Ok(condition) if hidden.iter().flat_map(|h| h.iter()).any(|f| condition.reads_data_field(f)) => {
                    errors.push(FieldError::new("/query", "names a field you may not read"));
                    None
                }
                Ok(condition) => Some(condition),
                Err(query_errors) => {
                    errors.extend(query_errors);
                    None
                }
            },
        };
        let mut listed_by = Map::from_iter([
            ("owner".to_owned(), json!(owner)),
            ("filter".to_owned(), json!(filter)),
            ("order".to_owned(), json!(order_id(&order))),
        ]);
        // Only when there is one, so that the cursors of lists without a query stay what they were.
        if let Some(query) = &read.query {
            listed_by.insert("query".to_owned(), json!(query));
        }
        // A cursor is good only for the same sight: a page of one organization does not continue another's.
        if let Some(visible) = &visible {
            listed_by.insert("visible".to_owned(), json!(format!("{visible:?}")));
        }
        let condition = match (condition, visible) {
            (Some(condition), Some(visible)) => Some(Condition::All(vec![condition, (*visible).clone()])),
            (None, Some(visible)) => Some((*visible).clone()),
            (condition, None) => condition,
        };
        let query_id = fingerprint(def.name(), &listed_by);
        let after = match &read.cursor {
            None => None,
            Some(cursor) => match decode_cursor(cursor.as_str(), &query_id, order.len()) {
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
            condition,
            after,
            limit: limit + 1,
        };
        Ok(Plan { query, limit, query_id, fields, count: read.count == Some(true), hidden })
    }
}

/// A page as the client gets it: at most `limit` items within [`LIST_PAGE_BYTES`], and a cursor when more follow.
fn page_of(
    mut page: Vec<Listed>,
    limit: usize,
    query_id: &str,
) -> Result<(Vec<Resource>, Option<Text<1, 512>>), ErrorPayload> {
    let keep = within_page_bytes(&page, limit);
    let next_cursor = if page.len() > keep {
        page.truncate(keep);
        page.last().map(|last| encode_cursor(query_id, &last.key, &last.record.id))
    } else {
        None
    };
    let items = page.into_iter().map(|listed| resource(listed.record)).collect::<Result<Vec<_>, _>>()?;
    Ok((items, next_cursor.and_then(|c| Text::new(c).ok())))
}

/// The most a list page holds, counted as its items' `data` in JSON: a reply is held whole while the client reads
/// it, so a page of a hundred large resources would let one small request pin megabytes. A page stops before the
/// item that would pass this (it always has at least one) and says so with `nextCursor`.
pub const LIST_PAGE_BYTES: usize = 1024 * 1024;

/// How many of `page` (at most `limit`) fit in [`LIST_PAGE_BYTES`].
fn within_page_bytes(page: &[Listed], limit: usize) -> usize {
    let mut bytes = 0;
    for (n, listed) in page.iter().take(limit).enumerate() {
        bytes += json_len(&listed.record.data);
        if bytes > LIST_PAGE_BYTES && n > 0 {
            return n;
        }
    }
    page.len().min(limit)
}

/// The length of `value` as compact JSON, counted without building the text.
fn json_len(value: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// How a cursor names its list's order: one key as cursors always named it (so that they stay valid across an
/// upgrade), several as the list of them.
fn order_id(order: &[Sort]) -> String {
    match order {
        [one] => format!("{:?}{}", one.key, one.descending),
        several => format!("{several:?}"),
    }
}

/// A cursor: the position after the page's last item, bound to the query (owner, filter, order) it came from, so
/// that a cursor of one list is refused by another. One key's value is written alone, as cursors always had it.
fn encode_cursor(query_id: &str, key: &[Value], id: &str) -> String {
    let key = match key {
        [one] => one.clone(),
        several => Value::Array(several.to_vec()),
    };
    URL_SAFE_NO_PAD.encode(json!({ "q": query_id, "k": key, "i": id }).to_string())
}

fn decode_cursor(cursor: &str, query_id: &str, keys: usize) -> Option<(Vec<Value>, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    if value.get("q")?.as_str()? != query_id {
        return None;
    }
    let key = match (keys, value.get("k")?) {
        (1, one) => vec![one.clone()],
        (_, Value::Array(several)) if several.len() == keys => several.clone(),
        _ => return None,
    };
    Some((key, value.get("i")?.as_str()?.to_owned()))
}
