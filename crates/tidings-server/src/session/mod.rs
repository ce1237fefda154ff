//! One connection's session: the protocol's state machine, its timers and its limits.
//!
//! A session owns its socket: it reads whole messages from an [`Incoming`] (the socket's reader, on the session's own
//! task) and writes to an [`Outbound`]; being generic over both, it is testable without sockets. It handles one message
//! at a time, in order, and flushes once per batch of messages that were already waiting, so pipelined requests cost
//! one write.
//! Creates are queued, and answered later in the same turn (`creates.rs`).

mod creates;
mod deadlines;
mod handshake;
mod notifications;
mod presence;
mod subscriptions;

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tidings_protocol::{
    decode_client, encode, peek_request_id, ClientMessage, CloseCode, Empty, Envelope, ErrorCode, ErrorPayload,
    RequestId, ServerMessage,
};
use tokio::time::{interval_at, sleep_until, Instant, MissedTickBehavior};
use tracing::{debug, info};

use crate::auth::Identity;
use crate::connection::{Inbound, Incoming, Outbound};
use crate::directory::{Kick, Registration};
use crate::hub::{Deliveries, Delivery, Mailbox};
use crate::metrics;
use crate::presence::PRESENCE;
use crate::push::goodbye;
use crate::shared::{ConnectionPermit, Shared, UserPermit};
use creates::replied;
use deadlines::{Deadline, Expiry};
use notifications::Inbox;
use subscriptions::Subscriptions;

/// The most messages and pushes a session handles between two flushes (and two looks at its timers and signals).
const TURN: usize = 256;

/// How many times a session woken by a push yields before it writes. tokio runs a yielded task again after it has
/// looked at its sockets and timers, so each yield lets requests in that make more events for the same write. One
/// yield halved the writes of a broadcast; under `fanout-filtered` three delivered a tenth more than one, and
/// `fanout-100` and `fanout-1000` gained too (alternating runs, 2026-12-03); a quiet server answers a yield at once.
const PUSH_YIELDS: usize = 3;

/// The connection states of docs/protocol.md, section 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The socket is open; `connect` has not been answered.
    Open,
    /// `connect` was answered; no `auth` has succeeded yet.
    Connected,
    /// `auth_success` was sent.
    Authenticated,
    /// A `disconnect` was sent or received; nothing more is processed.
    Closing,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Connected => "connected",
            State::Authenticated => "authenticated",
            State::Closing => "closing",
        }
    }
}

/// Whether the session goes on after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The authenticated user of a session, and their place among the user's connections.
#[derive(Debug)]
struct User {
    identity: Identity,
    _permit: UserPermit,
}

/// What woke the session's loop.
enum Woken {
    Shutdown,
    Kicked,
    Slow,
    /// The next message from the socket, or `None` once nothing more will come.
    Message(Option<Inbound>),
    Delivery(Delivery),
    Deadline(Deadline),
    Ping,
}

/// One connection's session.
pub struct Session<O: Outbound> {
    shared: Arc<Shared>,
    out: O,
    id: String,
    state: State,
    user: Option<User>,
    expiry: Expiry,
    opened_at: Instant,
    last_heard: Instant,
    rate: DefaultDirectRateLimiter,
    refused_in_a_row: u32,
    mailbox: Mailbox,
    /// What the hub hands this connection; drained by the loop, and between the pages of a replay.
    deliveries: Deliveries,
    /// Cancelled when the session must end: the server shuts down (a child of its token), an operator kicks it,
    /// or its mailbox overflowed (the connection is too slow, closed with 4001). One token, so that each turn
    /// polls one waiter, not three; [`Session::why_ended`] tells which.
    ended: tokio_util::sync::CancellationToken,
    /// This session's place in the directory, and how an operator ends it.
    listed: (Registration, Kick),
    subscriptions: Subscriptions,
    /// What this connection did with its user's notifications.
    inbox: Inbox,
    permit: ConnectionPermit,
    /// The creates of this turn whose replies are still to be sent, oldest first (see the module docs).
    queued: VecDeque<creates::Queued>,
    /// How many creates the session has queued, ever: a message that queued one has its time recorded with its
    /// reply, not when it was handled.
    creates_queued: u64,
    /// Leaves every topic the connection joined when the session ends, however it ends (a panic, a task aborted).
    _present: presence::Leaving,
}

impl<O: Outbound> std::fmt::Debug for Session<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id).field("state", &self.state).finish_non_exhaustive()
    }
}

impl<O: Outbound> Session<O> {
    /// A session for a connection that holds `permit`, writing to `out`.
    pub fn new(shared: Arc<Shared>, out: O, permit: ConnectionPermit) -> Self {
        let limits = &shared.config.limits;
        let quota = Quota::per_second(NonZeroU32::new(limits.rate_per_second).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(limits.rate_burst).unwrap_or(NonZeroU32::MIN));
        let now = Instant::now();
        let ended = shared.shutdown.child_token();
        let (mailbox, deliveries) = Mailbox::cancelling(limits.outbound_queue, ended.clone());
        let id = format!("s-{:012x}", rand::random::<u64>() >> 16);
        let listed = shared.directory.enter(&id, &mailbox, ended.clone());
        let present = presence::Leaving::new(&shared.presence, mailbox.connection);
        let rate = RateLimiter::direct_with_clock(quota, shared.clock.clone());
        Session {
            id,
            listed,
            shared,
            out,
            state: State::Open,
            user: None,
            expiry: Expiry::None,
            opened_at: now,
            last_heard: now,
            rate,
            refused_in_a_row: 0,
            mailbox,
            deliveries,
            ended,
            subscriptions: Subscriptions::default(),
            inbox: Inbox::default(),
            permit,
            queued: VecDeque::new(),
            creates_queued: 0,
            _present: present,
        }
    }

    /// This session's id, as the `connect` reply and the logs show it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs the session until the connection ends, the client leaves, or the server shuts down.
    pub async fn run(mut self, mut inbound: impl Incoming) {
        let ended = self.ended.clone();
        let period = self.shared.config.ping_interval();
        let mut ping = interval_at(Instant::now() + period, period);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        debug!(session = %self.id, "opened");
        // The futures the loop waits on are made once, not on every turn: each turn is one message or one push,
        // and making and dropping cancellation waiters and a timer per turn was a measurable share of the
        // per-message cost.
        let ended = ended.cancelled();
        tokio::pin!(ended);
        let timer = sleep_until(Instant::now());
        tokio::pin!(timer);
        loop {
            debug_assert!(self.queued.is_empty(), "a create stayed queued after its turn");
            let (deadline, what) = self.next_deadline();
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            let woken = tokio::select! {
                biased;
                () = &mut ended => self.why_ended(),
                message = inbound.recv() => Woken::Message(message),
                Some(delivery) = self.deliveries.recv() => Woken::Delivery(delivery),
                () = &mut timer => Woken::Deadline(what),
                _ = ping.tick() => Woken::Ping,
            };
            // Boxed, so that the session's own future stays small while it waits, which is most of its life: the
            // state of a turn (a request, a push, a write) would otherwise be held by every idle connection.
            if Box::pin(self.turn(woken, &mut inbound)).await == Flow::Stop {
                break;
            }
        }
        self.leave_hub();
        let user = self.user.as_ref().map(|u| u.identity.user_id.as_str()).unwrap_or("-");
        debug!(session = %self.id, user, "closed");
    }

    /// One turn of the loop: what woke the session, then whatever else waits now, then one flush for all of it.
    async fn turn(&mut self, woken: Woken, inbound: &mut impl Incoming) -> Flow {
        let pushing = matches!(woken, Woken::Delivery(_));
        let mut flow = match woken {
            Woken::Shutdown => self.disconnect(CloseCode::GoingAway).await,
            Woken::Kicked => {
                let reason = self.listed.1.reason();
                self.disconnect_because(CloseCode::Kicked, reason.as_deref()).await
            }
            Woken::Slow => {
                ::metrics::counter!(crate::metrics::SLOW_CONSUMERS).increment(1);
                self.disconnect(CloseCode::SlowConsumer).await
            }
            Woken::Message(Some(message)) => Box::pin(self.on_inbound(message)).await,
            Woken::Message(None) => Flow::Stop,
            Woken::Delivery(delivery) => self.deliver(delivery).await,
            Woken::Deadline(what) => Box::pin(self.on_deadline(what)).await,
            Woken::Ping => self.send(None, ServerMessage::Ping(Empty {})).await,
        };
        // What arrived meanwhile is handled before the flush, so replies and pushes share one write.
        flow = self.handle_waiting(inbound, flow).await;
        if pushing && flow == Flow::Continue {
            // A push woke the session: before writing, it lets the rest of the runtime's turn go first, in which
            // the publishers go on reaching this mailbox, so that their events leave in one write rather than one
            // per event (under load, a write per subscriber per event was most of a broadcast's cost). With nothing
            // else to run, a yield returns at once.
            for _ in 0..PUSH_YIELDS {
                tokio::task::yield_now().await;
            }
            flow = self.handle_waiting(inbound, flow).await;
        }
        // Last, after everything this turn read: no create stays queued between turns (`creates.rs`).
        if flow == Flow::Continue {
            flow = self.settle().await;
        }
        if self.out.flush().await.is_err() {
            return Flow::Stop;
        }
        self.mark_flushed().await;
        flow
    }

    /// Handles the messages and pushes waiting now, without waiting for more: at most [`TURN`] of them, so that a
    /// busy topic or a client that never stops sending cannot keep the session from its flush, its timers, a kick
    /// or a shutdown.
    async fn handle_waiting(&mut self, inbound: &mut impl Incoming, mut flow: Flow) -> Flow {
        let mut handled = 0;
        while handled < TURN && flow == Flow::Continue {
            if let Some(message) = inbound.try_recv() {
                flow = Box::pin(self.on_inbound(message)).await;
                handled += 1;
                continue;
            }
            // The pushes that wait, without looking at the socket between two of them: a look is a poll of the
            // socket, and a busy topic's pushes come hundreds to a turn.
            let mut pushed = false;
            while handled < TURN && flow == Flow::Continue {
                let Some(delivery) = self.deliveries.try_recv() else { break };
                // A push may write to the socket (a full buffer is written out): queued creates are published first.
                if !self.queued.is_empty() {
                    self.publish_queued().await;
                }
                flow = self.deliver(delivery).await;
                handled += 1;
                pushed = true;
            }
            if !pushed {
                break;
            }
        }
        flow
    }

    /// Why [`Session::ended`] was cancelled: a shutdown before a kick before an overflow, when several came.
    fn why_ended(&self) -> Woken {
        if self.shared.shutdown.is_cancelled() {
            Woken::Shutdown
        } else if self.listed.1.fired() {
            Woken::Kicked
        } else {
            Woken::Slow
        }
    }

    async fn on_inbound(&mut self, inbound: Inbound) -> Flow {
        self.last_heard = Instant::now();
        if self.state == State::Closing {
            return Flow::Stop;
        }
        match inbound {
            Inbound::Text(text) => self.on_text(&text).await,
            Inbound::Binary => {
                if let Some(flow) = self.refuse_over_rate(None).await {
                    return flow;
                }
                let error =
                    ErrorPayload::new(ErrorCode::InvalidMessage, "binary frames are not supported; send JSON text");
                self.send(None, ServerMessage::Error(error)).await
            }
            Inbound::Ping(payload) => {
                // Ping frames draw on the same budget as messages: answering every one would let a client spend
                // the server's CPU a pong at a time. Over the budget a ping goes unanswered (a ping is only a
                // liveness probe), and one that keeps on is closed with 1008 like any flood.
                if self.rate.check().is_err() {
                    self.refused_in_a_row += 1;
                    if self.refused_in_a_row > self.shared.config.limits.rate_abuse_after {
                        info!(session = %self.id, "closing a connection that kept sending pings while rate limited");
                        return self.disconnect(CloseCode::PolicyViolation).await;
                    }
                    return Flow::Continue;
                }
                self.refused_in_a_row = 0;
                match self.out.pong(&payload).await {
                    Ok(()) => Flow::Continue,
                    Err(_) => Flow::Stop,
                }
            }
            Inbound::Pong => Flow::Continue,
            Inbound::Close(_) => {
                // The client closed: answer its close frame and end, without a `disconnect` of our own.
                let _ = self.settle().await;
                self.state = State::Closing;
                let _ = self.out.close(CloseCode::Normal.code(), CloseCode::Normal.reason()).await;
                Flow::Stop
            }
            Inbound::TooBig => self.disconnect(CloseCode::MessageTooBig).await,
            Inbound::InvalidUtf8 => self.disconnect(CloseCode::InvalidPayload).await,
            Inbound::ProtocolError => {
                let _ = self.settle().await;
                self.state = State::Closing;
                let _ = self.out.close(crate::connection::PROTOCOL_ERROR, "protocol error").await;
                Flow::Stop
            }
            Inbound::Broken => Flow::Stop,
        }
    }

    /// Applies the rate limit to one data frame (`text` when it is text); `Some` when the frame is refused.
    async fn refuse_over_rate(&mut self, text: Option<&str>) -> Option<Flow> {
        let Err(not_until) = self.rate.check() else {
            self.refused_in_a_row = 0;
            return None;
        };
        self.refused_in_a_row += 1;
        if self.refused_in_a_row > self.shared.config.limits.rate_abuse_after {
            info!(session = %self.id, "closing a connection that kept sending while rate limited");
            return Some(self.disconnect(CloseCode::PolicyViolation).await);
        }
        let wait = not_until.wait_time_from(self.shared.clock.now());
        let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let error =
            ErrorPayload::new(ErrorCode::RateLimited, format!("too many messages; retry in {retry_after_ms} ms"))
                .with_detail("retryAfterMs", retry_after_ms);
        Some(self.send(text.and_then(peek_request_id), ServerMessage::Error(error)).await)
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        let limits = &self.shared.config.limits;
        let oversized = text.len() > limits.max_message_bytes;
        let max_bytes = limits.max_message_bytes;
        if let Some(flow) = self.refuse_over_rate(Some(text)).await {
            return flow;
        }
        if oversized {
            let error = ErrorPayload::new(
                ErrorCode::PayloadTooLarge,
                format!("the message has {} bytes; the limit is {max_bytes}", text.len()),
            )
            .with_detail("maxBytes", max_bytes)
            .with_detail("size", text.len());
            return self.send(peek_request_id(text), ServerMessage::Error(error)).await;
        }
        let started = Instant::now();
        match decode_client(text) {
            Ok(envelope) => {
                let kind = envelope.message.message_type();
                let ty = kind.as_str();
                metrics::per_message().received(kind).increment(1);
                // A span for traces only: at DEBUG, it costs nothing unless a collector is configured.
                let span = tracing::debug_span!(
                    "ws.request",
                    otel.name = %format_args!("ws {ty}"),
                    message.type = ty,
                    session.id = %self.id,
                    user.id = tracing::field::Empty,
                );
                if let Some(user) = &self.user {
                    span.record("user.id", user.identity.user_id.as_str());
                }
                let queued = self.creates_queued;
                let flow =
                    tracing::Instrument::instrument(self.dispatch(envelope.request_id, envelope.message), span).await;
                // A queued create's time is recorded with its reply.
                if self.creates_queued == queued {
                    metrics::per_message().answered(kind).record(started.elapsed().as_secs_f64());
                }
                flow
            }
            Err(rejected) => {
                metrics::per_message().invalid().increment(1);
                self.send(rejected.request_id, ServerMessage::Error(rejected.error)).await
            }
        }
    }

    /// Routes a decoded message by the connection's state (docs/protocol.md, section 3): the one place a message
    /// is routed, each arm handing it to the room that handles it.
    async fn dispatch(&mut self, request_id: Option<RequestId>, message: ClientMessage) -> Flow {
        // Whatever is not a create that may be queued sees the creates before it done, and answered.
        if !self.may_queue(&message) && self.settle().await == Flow::Stop {
            return Flow::Stop;
        }
        let who = self.user.as_ref().map(|user| &user.identity);
        match (self.state, who, message) {
            (_, _, ClientMessage::Disconnect(_)) => {
                self.state = State::Closing;
                let _ = self.out.close(CloseCode::Normal.code(), CloseCode::Normal.reason()).await;
                Flow::Stop
            }
            (_, _, ClientMessage::Ping(_)) => self.send(request_id, ServerMessage::Pong(Empty {})).await,
            (_, _, ClientMessage::Pong(_)) => Flow::Continue,
            (State::Open, _, ClientMessage::Connect(connect)) => self.connect(request_id, &connect).await,
            // The design notes' flow signs in without `connect`: `auth` first connects with the newest 1.x, without
            // a `connect` reply (the client asked for none), then signs in.
            (State::Open, _, ClientMessage::Auth(auth)) => {
                self.state = State::Connected;
                self.auth(request_id, auth).await
            }
            (State::Open, _, _) => self.refuse(request_id, ErrorCode::InvalidState, "send connect first").await,
            (_, _, ClientMessage::Connect(_)) => {
                self.refuse(request_id, ErrorCode::InvalidState, "this connection has already sent connect").await
            }
            (_, _, ClientMessage::Auth(auth)) => self.auth(request_id, auth).await,
            (State::Connected, _, _) | (_, None, _) => {
                self.refuse(request_id, ErrorCode::Unauthorized, "authenticate first: send auth with a token").await
            }
            (_, Some(_), _) if matches!(self.expiry, Expiry::Grace(_)) => self.refuse_expired(request_id).await,
            (_, Some(_), ClientMessage::Subscribe(subscribe)) => self.subscribe(request_id, subscribe).await,
            (_, Some(_), ClientMessage::Unsubscribe(unsubscribe)) => self.unsubscribe(request_id, unsubscribe).await,
            // A member of the built-in type `presence` lives in memory as long as the connection (presence.rs).
            (_, Some(_), ClientMessage::Create(create)) if create.resource_type.as_str() == PRESENCE => {
                self.join_presence(request_id, create).await
            }
            (_, Some(_), ClientMessage::Update(update)) if update.resource_type.as_str() == PRESENCE => {
                self.update_presence(request_id, update).await
            }
            (_, Some(_), ClientMessage::Delete(delete)) if delete.resource_type.as_str() == PRESENCE => {
                self.leave_presence_member(request_id, delete).await
            }
            (_, Some(who), ClientMessage::Create(create)) => {
                let started = Instant::now();
                let rid = request_id.as_ref().map(RequestId::as_str);
                let queued = self.shared.resources.queue_create(who, rid, create).await;
                self.queued.push_back((request_id, started, queued));
                self.creates_queued += 1;
                Flow::Continue
            }
            (_, Some(who), ClientMessage::Read(read)) => {
                let reply = self.shared.resources.read(who, read).await;
                self.answer(request_id, reply.map(ServerMessage::Read)).await
            }
            (_, Some(who), ClientMessage::Update(update)) => {
                let reply = self.shared.resources.update(who, update).await;
                self.answer(request_id, reply.map(ServerMessage::Update)).await
            }
            (_, Some(who), ClientMessage::Delete(delete)) => {
                let reply = self.shared.resources.delete(who, delete).await;
                self.answer(request_id, reply.map(ServerMessage::Delete)).await
            }
            (_, Some(who), ClientMessage::Batch(batch)) => {
                let rid = request_id.as_ref().map(RequestId::as_str);
                let reply = self.shared.resources.batch(who, rid, batch).await;
                self.answer(request_id, reply.map(ServerMessage::Batch)).await
            }
        }
    }

    /// Answers an operation (see [`replied`]).
    async fn answer(&mut self, request_id: Option<RequestId>, reply: Result<ServerMessage, ErrorPayload>) -> Flow {
        self.send(request_id, replied(reply)).await
    }

    /// Answers with an `error` whose details name the connection's state.
    async fn refuse(&mut self, request_id: Option<RequestId>, code: ErrorCode, message: &str) -> Flow {
        let error = ErrorPayload::new(code, message).with_detail("state", self.state.name());
        self.send(request_id, ServerMessage::Error(error)).await
    }

    /// Writes one message, after the replies of the queued creates; a failed write ends the session.
    async fn send(&mut self, request_id: Option<RequestId>, message: ServerMessage) -> Flow {
        if self.settle().await == Flow::Stop {
            return Flow::Stop;
        }
        self.write(request_id, message).await
    }

    /// Writes one message now.
    async fn write(&mut self, request_id: Option<RequestId>, message: ServerMessage) -> Flow {
        metrics::per_message().sent(message.message_type()).increment(1);
        if let ServerMessage::Error(error) = &message {
            ::metrics::counter!(metrics::ERRORS, "code" => error.code.as_str()).increment(1);
        }
        let text = encode(&Envelope::now(request_id, message));
        match self.out.text(&text).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }

    /// Says goodbye with `disconnect` and closes with the same code (docs/protocol.md, section 11).
    async fn disconnect(&mut self, close: CloseCode) -> Flow {
        self.disconnect_because(close, None).await
    }

    /// `disconnect` with a reason of the caller's (an operator's), or the code's own.
    async fn disconnect_because(&mut self, close: CloseCode, reason: Option<&str>) -> Flow {
        self.state = State::Closing;
        let notice = goodbye(close, reason);
        let reason = notice.reason.clone();
        if self.send(None, ServerMessage::Disconnect(notice)).await == Flow::Continue {
            let _ = self.out.close(close.code(), &reason).await;
        }
        debug!(session = %self.id, code = close.code(), "disconnected");
        Flow::Stop
    }
}
