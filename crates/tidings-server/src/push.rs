//! The messages the server sends unasked, encoded in one place: events, notifications and the goodbye.
//!
//! The hub, the resource service (a replay) and the session all push these; building them here means that an
//! event replayed from storage and the same event fanned out live are the same bytes, and that every close the
//! server initiates says goodbye the same way. This module sits low: it knows the protocol crate and the stored
//! records, and nothing that does I/O.

use std::sync::{Arc, LazyLock};

use tidings_protocol::{
    encode, Actor, ActorKind, CloseCode, Disconnect, Envelope, Event, LeaveReason, Level, Notification, ResourceId,
    ResourceType, Seq, ServerMessage, SubscriptionId, Text, Topic, Version,
};

use crate::query::Change;
use crate::storage::{EventKind, EventRecord, NotificationRecord};

/// The `event` push of a stored event for one topic, whose `seq` is `seq` (the type's seq, or the version for a
/// one-resource topic). The topic is also the subscription's id, which is what lets one encoding serve everyone.
/// With `previous_data` (the type's setting), an update's event carries the data before the change.
pub fn encode_event(event: &EventRecord, topic: &str, seq: u64, previous_data: bool) -> Option<Arc<str>> {
    encode_as(event, (topic, topic, seq), event.kind.as_str(), None, (&[], previous_data))
}

/// The `event` push of a stored event through a query subscription on its type's topic: `subscription` is the
/// query's id, the same for every subscriber to the query, and `change` what the event means to the query.
pub fn encode_change(event: &EventRecord, subscription: &str, change: Change, previous_data: bool) -> Option<Arc<str>> {
    encode_seen(event, (&event.resource_type, subscription, event.seq), change, false, (&[], previous_data))
}

/// An event's push as every query of its type that tells it the same way sends it (the same `change`), encoded
/// once: their pushes differ only in `subscriptionId`, which [`Told::parts`] puts in. Encoding the push anew for each
/// of a thousand distinct queries that an event concerns was an eighth of a filtered fan-out's time.
#[derive(Debug)]
pub struct Told {
    /// The push with [`PLACEHOLDER`] as its `subscriptionId`.
    text: String,
    /// Where the placeholder's JSON string (with its quotes) starts in `text`.
    at: usize,
}

/// The `subscriptionId` a [`Told`] is encoded with: random for each process, and never sent, so that no data can
/// hold it where the search for it would find it first.
static PLACEHOLDER: LazyLock<String> = LazyLock::new(|| format!("{:032x}", rand::random::<u128>()));

impl Told {
    /// An event's push through a query subscription (as [`encode_change`]), for any query's id.
    pub fn new(event: &EventRecord, change: Change, previous_data: bool) -> Option<Told> {
        let text = encode_change(event, &PLACEHOLDER, change, previous_data)?.to_string();
        let field = format!(r#""subscriptionId":"{}""#, PLACEHOLDER.as_str());
        let at = text.find(&field)? + r#""subscriptionId":"#.len();
        Some(Told { text, at })
    }

    /// A subscription id as [`Told::parts`] puts it in: checked and quoted once, when its query is first followed.
    pub fn quote(subscription: &str) -> Option<Arc<str>> {
        SubscriptionId::new(subscription).ok()?;
        serde_json::to_string(subscription).ok().map(Arc::from)
    }

    /// The push with `quoted` ([`Told::quote`]) as its `subscriptionId`, in three parts that are written one after
    /// the other: the same bytes [`encode_change`] makes for it, but for the envelope's timestamp. The session
    /// writes the parts into its frame, so a query's copy costs no allocation and no copy of its own.
    pub fn parts<'a>(&'a self, quoted: &'a str) -> [&'a str; 3] {
        [&self.text[..self.at], quoted, &self.text[self.at + PLACEHOLDER.len() + 2..]]
    }

    /// The push with `subscription` as its `subscriptionId`, whole.
    pub fn to(&self, subscription: &str) -> Option<String> {
        Some(self.parts(&Told::quote(subscription)?).concat())
    }
}

/// The `event` push of a stored event as `change` says it appears to a subscriber (`query::judge`). Through a
/// query (`plain` false) it is told as for the query; through a whole topic (`plain`), as the topic's own events:
/// `_created`, `_updated` (also for a resource that came into sight), `_deleted`, and for a resource that a change
/// hid from the subscriber, `_left` with reason `hidden`. A hidden resource's push carries no data: the
/// subscriber may no longer read it; the fields in `hidden` are removed from the data of every push (and from
/// the data before an update, which an `_updated` push carries when `previous_data`).
pub fn encode_seen(
    event: &EventRecord,
    (topic, subscription, seq): (&str, &str, u64),
    change: Change,
    plain: bool,
    shown: (&[String], bool),
) -> Option<Arc<str>> {
    // The data before a change goes only with an update the subscriber saw both sides of: a resource that came into
    // their sight (told as `_updated` on a plain topic) was hidden from them before.
    let shown = (shown.0, shown.1 && change == Change::Updated);
    let (suffix, reason) = match (change, plain) {
        (Change::Left(LeaveReason::Hidden), _) => ("left", Some(LeaveReason::Hidden)),
        (Change::Left(_), true) => (EventKind::Deleted.as_str(), None),
        (Change::Entered, true) => (EventKind::Updated.as_str(), None),
        (Change::Left(reason), false) => ("left", Some(reason)),
        (change, _) => (change.as_str(), None),
    };
    encode_as(event, (topic, subscription, seq), suffix, reason, shown)
}

fn encode_as(
    event: &EventRecord,
    (topic, subscription, seq): (&str, &str, u64),
    suffix: &str,
    reason: Option<LeaveReason>,
    (hidden, previous_data): (&[String], bool),
) -> Option<Arc<str>> {
    let data = match reason {
        Some(LeaveReason::Hidden) => serde_json::Map::new(),
        _ => {
            let mut data = event.data.clone();
            for field in hidden {
                data.remove(field);
            }
            data
        }
    };
    let payload = Event {
        event_type: Text::new(format!("{}_{suffix}", event.resource_type)).ok()?,
        data,
        topic: Some(Topic::new(topic).ok()?),
        subscription_id: Some(Text::new(subscription).ok()?),
        // An event in no log (an ephemeral type's, a presence change) has no position to resume from.
        seq: if seq == 0 { None } else { Some(Seq::new(seq).ok()?) },
        resource_type: Some(ResourceType::new(event.resource_type.clone()).ok()?),
        id: Some(ResourceId::new(event.id.clone()).ok()?),
        version: Some(Version::new(event.version).ok()?),
        owner_id: Some(Text::new(event.owner_id.clone()).ok()?),
        actor: Some(Actor { kind: ActorKind::User, id: Text::new(event.actor.clone()).ok()? }),
        occurred_at: Some(event.occurred_at),
        changed: match reason {
            Some(LeaveReason::Hidden) => None,
            _ => changed(event, hidden),
        },
        // Only on `_updated`: an `_entered` or `_left` is about the view, and a deletion's data is already the
        // data before it.
        previous_data: match (previous_data, event.previous.as_ref()) {
            (true, Some(previous)) if suffix == EventKind::Updated.as_str() => {
                let mut before = previous.data.clone();
                for field in hidden {
                    before.remove(field);
                }
                Some(before)
            }
            _ => None,
        },
        reason,
    };
    Some(Arc::from(encode(&Envelope::now(None, ServerMessage::Event(payload)))))
}

/// The top-level fields an update changed, in name order, without those hidden from the subscriber; `None` for
/// a creation or a deletion, and for an update logged without the resource before it.
fn changed(event: &EventRecord, hidden: &[String]) -> Option<Vec<String>> {
    let previous = event.previous.as_ref().filter(|_| event.kind == EventKind::Updated)?;
    let (before, after) = (&previous.data, &event.data);
    let mut names: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name) && !hidden.contains(name))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    Some(names)
}

/// The `notification` push of a stored notification; with `subscription`, as that subscription delivers it.
pub fn encode_notification(record: &NotificationRecord, subscription: Option<&str>) -> Option<Arc<str>> {
    let level = match record.level.as_str() {
        "success" => Level::Success,
        "warning" => Level::Warning,
        "error" => Level::Error,
        _ => Level::Info,
    };
    let payload = Notification {
        id: Text::new(record.id.clone()).ok()?,
        seq: Seq::new(record.seq).ok()?,
        level,
        title: Text::new(record.title.clone()).ok()?,
        body: Text::new(record.body.clone()).ok()?,
        data: record.data.clone(),
        created_at: record.created_at,
        subscription_id: match subscription {
            Some(id) => Some(Text::new(id).ok()?),
            None => None,
        },
    };
    Some(Arc::from(encode(&Envelope::now(None, ServerMessage::Notification(payload)))))
}

/// The `disconnect` sent before every close the server initiates (docs/protocol.md, section 11), with a reason of
/// the caller's (an operator's) or the code's own.
pub fn goodbye(close: CloseCode, reason: Option<&str>) -> Disconnect {
    Disconnect { code: close.code(), reason: reason.unwrap_or(close.reason()).to_owned(), reconnect: close.reconnect() }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use tidings_protocol::LeaveReason;

    use super::{encode_change, Told};
    use crate::query::Change;
    use crate::storage::{EventKind, EventRecord, Previous};

    /// The push without its timestamp, the one part that two encodings of it may not share.
    fn untimed(text: &str) -> Value {
        let mut message: Value = serde_json::from_str(text).expect("a push is JSON");
        message.as_object_mut().expect("an envelope").remove("timestamp");
        message
    }

    /// A query's push made from the shared encoding is the push encoded for that query alone, whatever the event's
    /// data holds: a key named `subscriptionId`, quotes and escapes in the id, and each way of telling the event.
    #[test]
    fn a_told_push_is_the_push_encoded_for_its_query() {
        let data = json!({"subscriptionId": "q\"1", "note": "\\u0000 \"subscriptionId\":\"x\"", "status": "shipped"});
        let event = EventRecord {
            resource_type: "order".to_owned(),
            seq: 42,
            id: "ORD-1".to_owned(),
            version: 3,
            kind: EventKind::Updated,
            owner_id: "alice".to_owned(),
            actor: "bob".to_owned(),
            data: data.as_object().cloned().expect("an object"),
            occurred_at: 1_700_000_000_000,
            previous: Some(Box::new(Previous {
                created_at: 1,
                updated_at: 2,
                data: json!({"status": "pending"}).as_object().cloned().expect("an object"),
            })),
        };
        let changes = [Change::Updated, Change::Entered, Change::Left(LeaveReason::Unmatched)];
        for (change, previous_data) in changes.into_iter().flat_map(|c| [(c, false), (c, true)]) {
            let told = Told::new(&event, change, previous_data).expect("encoded");
            for id in ["q:1", "order?status=\"shipped\"", "ü\\\u{1}"] {
                let shared = told.to(id).expect("a valid id");
                let alone = encode_change(&event, id, change, previous_data).expect("encoded");
                assert_eq!(untimed(&shared), untimed(&alone), "{change:?} to {id}");
            }
            assert!(told.to("").is_none(), "an id the protocol refuses is refused as encode_change refuses it");
        }
    }
}
