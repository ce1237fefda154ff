//! The creates a session queues.
//!
//! Creates are the exception that keeps the session's rule of one message at a time: the session queues the write of
//! each create it reads and goes on to the next message, and sends their replies (in order, each after its commit)
//! before any other reply, before it handles anything but another create that may be queued, and last in each turn,
//! before the flush. Every queued create is committed and its event published before the session writes anything
//! else to its socket (`publish_queued`), so a client that reads slowly cannot hold back a committed event. (A
//! create of an ephemeral type, of a type with a before-commit hook, or of `presence` waits for the creates before
//! it, since it acts before a commit.) A client's pipelined creates so share a commit,
//! stored in the order they came, and what the client sees is what one after another would show: a `read` after a
//! `create` finds it, and the replies come in the order of the requests. Between turns nothing is queued (the loop
//! asserts it in debug builds), so a kick, a shutdown or a deadline never finds a create unanswered.

use tidings_protocol::{ClientMessage, ErrorCode, ErrorPayload, MessageType, RequestId, ServerMessage};
use tokio::time::Instant;

use super::{Flow, Session};
use crate::connection::Outbound;
use crate::errors::prefix_pointers;
use crate::metrics;
use crate::presence::PRESENCE;
use crate::resources::QueuedCreate;

/// A queued create: the requestId to answer, when it was read, and the create on its way.
pub(super) type Queued = (Option<RequestId>, Instant, QueuedCreate);

impl<O: Outbound> Session<O> {
    /// Whether `message` is a create that may be queued behind the creates before it: not one of the built-in type
    /// `presence` (it lives in this session, at once), nor one its type makes wait ([`Resources::may_queue`]).
    ///
    /// [`Resources::may_queue`]: crate::resources::Resources::may_queue
    pub(super) fn may_queue(&self, message: &ClientMessage) -> bool {
        matches!(message, ClientMessage::Create(create)
            if create.resource_type.as_str() != PRESENCE && self.shared.resources.may_queue(create))
    }

    /// Finishes every queued create (waits for its commit, publishes its event) without writing anything, so that
    /// a socket that makes the session wait never holds back the publication of a committed create: the hub
    /// releases a type's events in `seq` order, and one unpublished event would hold back every later one of its
    /// type, for every subscriber, until the gap fill read it from storage.
    pub(super) async fn publish_queued(&mut self) {
        for (_, _, create) in self.queued.iter_mut() {
            if matches!(create, QueuedCreate::Answered(_)) {
                continue;
            }
            // Taken out while it is awaited: dropped half way (the session ends), it hands its rest to a task. The
            // stand-in is never answered: the session that could answer it is gone by then.
            let stand_in = QueuedCreate::Answered(Err(ErrorPayload::new(ErrorCode::Internal, "a create was lost")));
            let pending = std::mem::replace(create, stand_in);
            *create = QueuedCreate::Answered(pending.answer().await);
        }
    }

    /// Sends the replies of the queued creates, in order, once every one of them is committed and published.
    pub(super) async fn settle(&mut self) -> Flow {
        if self.queued.is_empty() {
            return Flow::Continue;
        }
        self.publish_queued().await;
        // Taken whole, so that the queue's memory goes with this turn.
        for (request_id, started, create) in std::mem::take(&mut self.queued) {
            let reply = create.answer().await.map(|created| ServerMessage::Create(created.resource));
            metrics::per_message().answered(MessageType::Create).record(started.elapsed().as_secs_f64());
            if self.write(request_id, replied(reply)).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

/// An operation's reply, or its error with the pointers moved under `/payload`, since the service's pointers are
/// relative to the payload and the spec's start at the message root.
pub(super) fn replied(reply: Result<ServerMessage, ErrorPayload>) -> ServerMessage {
    reply.unwrap_or_else(|error| ServerMessage::Error(prefix_pointers(error, "/payload")))
}
