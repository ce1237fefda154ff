//! `GET /api/v1/events?topic=...&since=...`: a topic's events as Server-Sent Events, so that a back end follows
//! changes with any HTTP client (`curl -N`) and no WebSocket library (docs/http-api.md, "Event feed").
//!
//! A feed is a subscription like the WebSocket's: authorized the same, joined to the hub before the topic's head
//! is read, replayed after `since` (or `Last-Event-ID`), then live, each event once and in order, its SSE `id` the
//! event's `seq`. Its memory is bounded as a connection's is: a feed that does not keep up is ended, and its client
//! resumes with `Last-Event-ID`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tidings_protocol::{ErrorCode, ErrorPayload, FieldError, Query, Topic};
use tokio::sync::mpsc;

use super::output::{invalid_params, ApiError};
use super::{query_params, Api, QueryParams};
use crate::hub::{Delivery, Follow, Hub, Mailbox, Scope};
use crate::resources::EventTopic;

/// Events read from the log per step of a replay, as a session's.
const REPLAY_BATCH: usize = 500;
/// Pushes a feed may hold before it counts as too slow and is ended.
const MAILBOX: usize = 256;
/// How often an idle feed sends a comment, so that proxies keep it open and clients see it alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Leaves the hub when the feed ends, however it ends (the client hung up, or the feed was too slow).
struct Joined {
    hub: Arc<Hub>,
    follow: Follow,
    connection: u64,
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.follow, self.connection);
    }
}

pub(super) async fn feed(
    State(api): State<Arc<Api>>,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = api.admit(&headers).await?;
    let mut errors = Vec::new();
    let params = query_params(query, &mut errors);
    let topic = params.single("topic", "/topic", &mut errors).and_then(|text| match Topic::new(text) {
        Ok(topic) => Some(topic),
        Err(_) => {
            errors.push(FieldError::new("/topic", "must be a topic: a resource type, or TYPE:ID"));
            None
        }
    });
    let mut since = params.single("since", "/since", &mut errors).and_then(|text| match text.parse::<u64>() {
        Ok(since) => Some(since),
        Err(_) => {
            errors.push(FieldError::new("/since", "must be a seq, a whole number"));
            None
        }
    });
    // An EventSource that reconnects says where it stopped; that wins over the URL's `since`. The ids this feed
    // sends are seqs, so anything else there is a client's mistake, said as such rather than ignored.
    if let Some(last) = headers.get("last-event-id") {
        match last.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(last) => since = Some(last),
            None => errors.push(FieldError::new("/lastEventId", "must be a seq this feed sent, a whole number")),
        }
    }
    let condition =
        params.single("query", "/query", &mut errors).and_then(|text| match serde_json::from_str::<Query>(text) {
            Ok(query) => Some(query),
            Err(_) => {
                errors.push(FieldError::new("/query", "must be a query as JSON (docs/protocol.md, 7.7)"));
                None
            }
        });
    let Some(topic) = topic.filter(|_| errors.is_empty()) else {
        if errors.is_empty() {
            errors.push(FieldError::new("/topic", "is required"));
        }
        return Err(invalid_params(errors));
    };
    let shared = Arc::clone(&api.shared);
    // A feed counts as one of the server's connections and of its user's, under the same limits.
    let limits = &shared.config.limits;
    let too_many = |what: &str| ErrorPayload::new(ErrorCode::LimitExceeded, format!("too many connections {what}"));
    let connection = shared.connections.open(limits.max_connections).ok_or_else(|| too_many("to this server"))?;
    let user = shared
        .connections
        .authenticate(&who.user_id, limits.max_connections_per_user)
        .ok_or_else(|| too_many("of this user"))?;
    let resources = &shared.resources;
    let Some(followed) = EventTopic::of(&topic) else {
        let error = ErrorPayload::new(
            ErrorCode::InvalidParams,
            "the feed follows resource topics; notifications come over WebSocket",
        );
        return Err(error.into());
    };
    let follow = resources.follow(&who, &topic, condition.as_ref())?;
    let name = match followed {
        EventTopic::Type(name) | EventTopic::Resource(name, _) => name,
    };
    let scope = match followed {
        EventTopic::Type(name) => Some(resources.scope_for(&who, name)?),
        EventTopic::Resource(name, _) => resources.scope_for(&who, name).ok(),
    };
    let hidden = resources.hidden_for(&who, name);
    let (mailbox, mut inbox, slow) = Mailbox::new(MAILBOX);
    // Joined before the head is read: an event committed in between reaches the mailbox instead of falling between.
    shared.hub.subscribe(&follow, &mailbox, scope.clone().unwrap_or(Scope::All), hidden.clone());
    let joined = Joined { hub: Arc::clone(&shared.hub), follow: follow.clone(), connection: mailbox.connection };
    let opened = resources.open_subscription(&who, followed).await?;
    let (out, events) = mpsc::channel::<Event>(16);
    tokio::spawn(async move {
        let _held = (joined, connection, user);
        let send = |event: Event| out.send(event);
        let mut last = opened.head;
        if let Some(since) = since {
            let mut after = since;
            let mut recovered = since <= opened.head;
            while recovered && after < opened.head {
                let sight = (scope.as_ref(), hidden.as_deref());
                let Ok(page) = shared.resources.replay(&follow, sight, after, REPLAY_BATCH).await else { return };
                if after == since && page.first != Some(since + 1) {
                    recovered = false;
                    break;
                }
                for (seq, text) in page.events {
                    if send(Event::default().id(seq.to_string()).data(&*text)).await.is_err() {
                        return;
                    }
                }
                match page.last {
                    Some(read) => after = read,
                    None => break,
                }
            }
            last = last.max(after);
            if !recovered {
                // Like `recovered: false`: what came before is not all here, and the client reads the state anew.
                let data = json!({ "recovered": false, "seq": opened.head }).to_string();
                if send(Event::default().event("reset").data(data)).await.is_err() {
                    return;
                }
                last = opened.head;
            }
        }
        loop {
            let delivery = tokio::select! {
                () = slow.cancelled() => return,
                delivery = inbox.recv() => delivery,
            };
            match delivery {
                Some(Delivery::Event(push)) if push.seq > last => {
                    last = push.seq;
                    if send(Event::default().id(push.seq.to_string()).data(push.text.whole())).await.is_err()
                        || push.ends
                    {
                        return;
                    }
                }
                Some(Delivery::Lost(_)) => {
                    let data = json!({ "recovered": false, "seq": last }).to_string();
                    let _ = send(Event::default().event("reset").data(data)).await;
                    return;
                }
                Some(_) => {}
                None => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(events, |mut events| async move {
        events.recv().await.map(|event| (Ok::<Event, Infallible>(event), events))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}
