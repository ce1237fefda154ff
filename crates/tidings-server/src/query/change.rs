//! What an event means to a query subscription: a resource that was created in the query, changed in it, entered
//! it or left it. Decided from the event alone (its data after the change and the resource before, which every
//! update's and deletion's event carries), so the hub decides it once per distinct query with no storage read.

use tidings_protocol::LeaveReason;

use super::{Condition, Subject};
use crate::storage::{EventKind, EventRecord};

/// An event as a query subscription delivers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Created, matching: `_created`.
    Created,
    /// Changed, matching before and after: `_updated`.
    Updated,
    /// Changed into a match: `_entered`, with the whole resource.
    Entered,
    /// No longer in the query, changed or deleted: `_left`.
    Left(LeaveReason),
}

impl Change {
    /// The suffix of the event's `eventType`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Entered => "entered",
            Change::Left(_) => "left",
        }
    }
}

impl Condition {
    /// What `event` means to a subscription to this condition; `None` when it does not concern it (the resource
    /// matched neither before nor after).
    ///
    /// An event logged before Tidings kept the previous resource cannot say whether it matched before: a change
    /// that matches after is then delivered as `_updated` (a client upserts either way), and one that does not as
    /// `_left` (a client drops what it does not hold), so that a view is never left stale.
    pub fn change(&self, event: &EventRecord) -> Option<Change> {
        judge(event, Some(self), None)
    }

    /// Whether the resource matches after the event: for a read rule, whether its subscriber still sees it.
    pub fn matches_after(&self, event: &EventRecord) -> bool {
        self.sides(event).1
    }

    /// Whether the resource matched before the event (`None`: the event cannot say) and matches after it.
    fn sides(&self, event: &EventRecord) -> (Option<bool>, bool) {
        let before = match (&event.kind, &event.previous) {
            (EventKind::Created, _) => Some(false),
            (_, Some(previous)) => Some(self.matches(&Subject {
                id: &event.id,
                owner_id: &event.owner_id,
                version: event.version.saturating_sub(1),
                created_at: previous.created_at,
                updated_at: previous.updated_at,
                data: &previous.data,
            })),
            (_, None) => None,
        };
        // The resource after the change, as storage wrote it: an update keeps `createdAt` and moves `updatedAt`
        // to the commit time (never backwards).
        let (created_at, updated_at) = match &event.previous {
            Some(previous) => (previous.created_at, previous.updated_at.max(event.occurred_at)),
            None => (event.occurred_at, event.occurred_at),
        };
        let after = self.matches(&Subject {
            id: &event.id,
            owner_id: &event.owner_id,
            version: event.version,
            created_at,
            updated_at,
            data: &event.data,
        });
        (before, after)
    }
}

/// What `event` means to a subscription that follows `query` (or, without one, the whole topic) for a subscriber
/// who sees what `visible` matches (or, without one, everything the subscription reaches); `None` when it does
/// not concern them. A resource that a change hides from the subscriber leaves with [`LeaveReason::Hidden`],
/// whether or not it still matches the query, so that the leave tells nothing of what the subscriber may not see.
/// A resource the event cannot say was visible before (logged before Tidings kept it) is not announced as
/// hidden: a leave would tell that it exists.
pub fn judge(event: &EventRecord, query: Option<&Condition>, visible: Option<&Condition>) -> Option<Change> {
    let whole = (Some(event.kind != EventKind::Created), true);
    let (query_before, query_after) = query.map_or(whole, |query| query.sides(event));
    let (seen_before, seen_after) = visible.map_or(whole, |visible| visible.sides(event));
    let before = match (query_before, seen_before) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    };
    if event.kind == EventKind::Deleted {
        // A deletion's data is the resource as it was: whether it was visible is known.
        let was_seen = visible.is_none_or(|visible| visible.sides(event).1);
        return (before != Some(false) && was_seen).then_some(Change::Left(LeaveReason::Deleted));
    }
    let after = query_after && seen_after;
    match (event.kind, before, after) {
        (EventKind::Created, _, true) => Some(Change::Created),
        (_, Some(true) | None, true) => Some(Change::Updated),
        (_, Some(false), true) => Some(Change::Entered),
        (_, Some(true), false) if !seen_after => Some(Change::Left(LeaveReason::Hidden)),
        (_, None, false) if !seen_after => None,
        (_, Some(true) | None, false) => Some(Change::Left(LeaveReason::Unmatched)),
        (_, Some(false), false) => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::query::{Field, Operand, Test};
    use crate::storage::Previous;

    fn pending() -> Condition {
        Condition::Test(Field::Data(vec!["status".into()]), Test::In(vec![Operand::Text("pending".into())]))
    }

    fn data(status: &str) -> Map<String, Value> {
        json!({ "status": status }).as_object().cloned().expect("an object")
    }

    fn event(kind: EventKind, after: &str, before: Option<&str>) -> EventRecord {
        EventRecord {
            resource_type: "order".into(),
            seq: 9,
            id: "ORD-1".into(),
            version: if kind == EventKind::Created { 1 } else { 4 },
            kind,
            owner_id: "alice".into(),
            actor: "olga".into(),
            data: data(after),
            occurred_at: 2_000,
            previous: before.map(|b| Box::new(Previous { created_at: 1_000, updated_at: 1_500, data: data(b) })),
        }
    }

    #[test]
    fn events_become_creations_changes_enters_and_leaves() {
        let query = pending();
        let cases = [
            (event(EventKind::Created, "pending", None), Some(Change::Created)),
            (event(EventKind::Created, "shipped", None), None),
            (event(EventKind::Updated, "pending", Some("pending")), Some(Change::Updated)),
            (event(EventKind::Updated, "pending", Some("draft")), Some(Change::Entered)),
            (event(EventKind::Updated, "shipped", Some("pending")), Some(Change::Left(LeaveReason::Unmatched))),
            (event(EventKind::Updated, "shipped", Some("draft")), None),
            (event(EventKind::Deleted, "pending", Some("pending")), Some(Change::Left(LeaveReason::Deleted))),
            (event(EventKind::Deleted, "shipped", Some("shipped")), None),
            // Logged without the resource before: a view is never left stale.
            (event(EventKind::Updated, "pending", None), Some(Change::Updated)),
            (event(EventKind::Updated, "shipped", None), Some(Change::Left(LeaveReason::Unmatched))),
            (event(EventKind::Deleted, "shipped", None), Some(Change::Left(LeaveReason::Deleted))),
        ];
        for (event, expected) in cases {
            assert_eq!(query.change(&event), expected, "{:?} from {:?}", event.kind, event.previous);
        }
    }

    #[test]
    fn a_resource_a_rule_hides_leaves_as_hidden_and_one_it_shows_enters() {
        // The subscriber sees pending orders (their rule); they follow the whole topic, or a query on `version`.
        let visible = pending();
        let whole = None;
        let cases = [
            (event(EventKind::Updated, "shipped", Some("pending")), Some(Change::Left(LeaveReason::Hidden))),
            (event(EventKind::Updated, "pending", Some("shipped")), Some(Change::Entered)),
            (event(EventKind::Updated, "shipped", Some("draft")), None),
            (event(EventKind::Created, "shipped", None), None),
            (event(EventKind::Deleted, "shipped", Some("shipped")), None),
            (event(EventKind::Deleted, "pending", Some("pending")), Some(Change::Left(LeaveReason::Deleted))),
            // Logged without the resource before: a leave would tell that it exists.
            (event(EventKind::Updated, "shipped", None), None),
        ];
        for (event, expected) in cases {
            assert_eq!(judge(&event, whole, Some(&visible)), expected, "{:?} from {:?}", event.kind, event.previous);
        }
        // Hidden wins over unmatched: the leave tells nothing of the data the subscriber may no longer see.
        let query = Condition::Test(Field::Version, Test::Compare(super::super::Ordering::Less, Operand::Number(4.0)));
        let hidden = event(EventKind::Updated, "shipped", Some("pending"));
        assert_eq!(judge(&hidden, Some(&query), Some(&visible)), Some(Change::Left(LeaveReason::Hidden)));
        let unmatched = event(EventKind::Updated, "pending", Some("pending"));
        assert_eq!(judge(&unmatched, Some(&query), Some(&visible)), Some(Change::Left(LeaveReason::Unmatched)));
    }

    #[test]
    fn own_fields_are_read_before_and_after_the_change() {
        // `version` moves by one and `updatedAt` to the commit: a query on them sees the resource leave.
        let young = Condition::Test(Field::Version, Test::Compare(super::super::Ordering::Less, Operand::Number(4.0)));
        let changed = event(EventKind::Updated, "pending", Some("pending"));
        assert_eq!(young.change(&changed), Some(Change::Left(LeaveReason::Unmatched)));
        let recent =
            Condition::Test(Field::UpdatedAt, Test::Compare(super::super::Ordering::Greater, Operand::Number(1_800.0)));
        assert_eq!(recent.change(&changed), Some(Change::Entered));
        let old = Condition::Test(Field::CreatedAt, Test::In(vec![Operand::Number(1_000.0)]));
        assert_eq!(old.change(&changed), Some(Change::Updated));
    }

    /// The fan-out passes a query by when the event's resource has none of its required values (`Looked`): that
    /// must never hide a change the query would tell. Every case of the tests above, for a query of one equality
    /// and one of an equality and another test, and for equalities the event meets and misses.
    #[test]
    fn a_query_passed_by_for_its_required_values_would_have_told_nothing() {
        let status = |values: &[&str]| {
            Condition::Test(
                Field::Data(vec!["status".into()]),
                Test::In(values.iter().map(|v| Operand::Text((*v).into())).collect()),
            )
        };
        let young = Condition::Test(Field::Version, Test::Compare(super::super::Ordering::Less, Operand::Number(9.0)));
        let queries = [
            status(&["pending"]),
            status(&["draft", "shipped"]),
            Condition::All(vec![young.clone(), status(&["pending"])]),
            Condition::All(vec![status(&["shipped"]), young]),
        ];
        let statuses = ["pending", "shipped", "draft"];
        let mut events = Vec::new();
        for after in statuses {
            events.push(event(EventKind::Created, after, None));
            for before in statuses {
                events.push(event(EventKind::Updated, after, Some(before)));
            }
            events.push(event(EventKind::Deleted, after, Some(after)));
            events.push(event(EventKind::Updated, after, None));
            events.push(event(EventKind::Deleted, after, None));
        }
        let (mut passed, mut told) = (0, 0);
        for query in &queries {
            let required = query.required().expect("each query has an equality");
            for event in &events {
                let change = query.change(event);
                told += usize::from(change.is_some());
                if !super::super::Looked::new(event).may_concern(&required) {
                    passed += 1;
                    assert_eq!(change, None, "{query:?} passed by for {:?} from {:?}", event.kind, event.previous);
                }
            }
        }
        assert!(passed > 20 && told > 20, "both kinds of case were tried: {passed} passed by, {told} told");
        assert!(Condition::Any(vec![status(&["a"]), status(&["b"])]).required().is_none(), "an `or` requires nothing");
    }
}
