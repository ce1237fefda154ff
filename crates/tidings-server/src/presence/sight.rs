//! Presence at a resource whose read rule depends on its data: a follower or member whose right to read the
//! resource came from its data loses the presence when a change of that data hides the resource from them, as
//! a subscriber of the resource's own topic hears `_left` with reason `hidden`.
//!
//! What each may see is the read rule's condition for their user, taken when they followed or joined; each
//! update of the resource is judged against it in memory, from the event alone, on every node (each node ends
//! its own followers and members), with no storage read.

use std::sync::Arc;

use tidings_protocol::{ErrorCode, ErrorPayload};

use super::{Follower, Presence, PRESENCE};
use crate::hub::{Delivery, EndedPush};
use crate::query::Condition;
use crate::storage::{EventKind, EventRecord};

impl Presence {
    /// Takes an update of a resource: the followers of its presence who no longer see it stop following (their
    /// subscription ends FORBIDDEN), and this node's members present at it who no longer see it leave.
    pub fn resource_changed(&self, event: &EventRecord) {
        if event.kind != EventKind::Updated {
            return;
        }
        let mut guard = self.inner();
        let inner = &mut *guard;
        // Most updates are of resources nobody is present at: one lookup, and nothing when presence is unused.
        if inner.rooms.is_empty() {
            return;
        }
        let topic = format!("{PRESENCE}:{}:{}", event.resource_type, event.id);
        let Some(room) = inner.rooms.get_mut(&topic) else { return };
        // Events reach the relay in the order they came (the broker's, a commit's), not always in their seq's;
        // the resource's version orders its own changes, and only the newest says what is visible now.
        if event.version <= room.judged {
            return;
        }
        room.judged = event.version;
        let hidden = |sight: Option<&Arc<Condition>>| sight.is_some_and(|sight| !sight.matches_after(event));
        let (gone, staying): (Vec<Follower>, Vec<Follower>) =
            std::mem::take(&mut room.followers).into_iter().partition(|f| hidden(f.sight.as_ref()));
        room.followers = staying;
        let sights = &inner.sights;
        let leaving: Vec<_> =
            room.members.values().filter(|m| m.node == self.node && hidden(sights.get(&m.id))).cloned().collect();
        if !gone.is_empty() {
            let (ty, id) = (&event.resource_type, &event.id);
            let message = format!("{ty} {id} is no longer visible to you, and its presence with it");
            let reason = ErrorPayload::new(ErrorCode::Forbidden, message);
            let ended: Arc<str> = Arc::from(topic.as_str());
            for follower in gone {
                let push = Box::new(EndedPush { topic: Arc::clone(&ended), reason: reason.clone() });
                follower.mailbox.offer(Delivery::Ended(push));
            }
        }
        for member in leaving {
            self.apply_own(inner, EventKind::Deleted, member);
        }
        inner.forget_if_empty(&topic);
    }

    /// After a re-authentication: what the new claims let `connection`, a follower of `topic`, see.
    pub fn resight_follower(&self, topic: &str, connection: u64, sight: Option<Arc<Condition>>) {
        let mut inner = self.inner();
        let followers = inner.rooms.get_mut(topic).map(|room| room.followers.iter_mut());
        if let Some(follower) = followers.into_iter().flatten().find(|f| f.mailbox.connection == connection) {
            follower.sight = sight;
        }
    }

    /// After a re-authentication: what the new claims let this node's member `id` see.
    pub fn resight_member(&self, id: &str, sight: Option<Arc<Condition>>) {
        let mut inner = self.inner();
        match sight {
            Some(sight) if inner.topics.contains_key(id) => {
                inner.sights.insert(id.to_owned(), sight);
            }
            _ => {
                inner.sights.remove(id);
            }
        }
    }
}
