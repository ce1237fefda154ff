//! `connect` and `auth`: opening a session and proving who its user is.

use tidings_protocol::{
    Auth, AuthSuccess, CloseCode, Connect, Connected, Heartbeat, Limits, PresenceLimits, QueryLimits, RateLimit,
    RequestId, ServerMessage, Text, MAX_BATCH_OPERATIONS, PROTOCOL_VERSION,
};
use tokio::time::Instant;
use tracing::info;

use super::{Expiry, Flow, Session, State, User};
use crate::auth::Rejection;
use crate::connection::Outbound;

impl<O: Outbound> Session<O> {
    /// Answers `connect` with the session's parameters and moves to `connected`.
    pub(super) async fn connect(&mut self, request_id: Option<RequestId>, _connect: &Connect) -> Flow {
        let config = &self.shared.config;
        let limits = &config.limits;
        let reply = Connected {
            protocol_version: PROTOCOL_VERSION.to_owned(),
            session_id: self.id.clone(),
            heartbeat: Heartbeat {
                ping_interval_ms: config.heartbeat.ping_interval_ms,
                idle_timeout_ms: config.heartbeat.idle_timeout_ms,
            },
            auth_timeout_ms: config.auth.auth_timeout_ms,
            limits: Limits {
                max_message_bytes: u64::try_from(limits.max_message_bytes).unwrap_or(u64::MAX),
                max_subscriptions: limits.max_subscriptions,
                rate_limit: RateLimit { messages_per_second: limits.rate_per_second, burst: limits.rate_burst },
                query: Some(QueryLimits::OF_THIS_VERSION),
                max_batch_operations: u32::try_from(MAX_BATCH_OPERATIONS).ok(),
                presence: Some(PresenceLimits {
                    max_members: config.presence.max_members,
                    max_state_bytes: config.presence.max_state_bytes,
                    max_joins: config.presence.max_joins,
                }),
            },
        };
        self.state = State::Connected;
        self.send(request_id, ServerMessage::Connect(reply)).await
    }

    /// Verifies the token of `auth`: the first time it authenticates the session, later it refreshes it.
    pub(super) async fn auth(&mut self, request_id: Option<RequestId>, auth: Auth) -> Flow {
        let identity = match self.shared.auth.verify(auth.token.as_str()).await {
            Ok(identity) => identity,
            Err(rejection) => return self.auth_failed(request_id, rejection).await,
        };
        if auth.user_id.as_ref().is_some_and(|claimed| claimed.as_str() != identity.user_id) {
            return self.auth_failed(request_id, Rejection::UserMismatch).await;
        }
        let mut refreshed = false;
        match &mut self.user {
            Some(user) if user.identity.user_id != identity.user_id => {
                return self.auth_failed(request_id, Rejection::UserChange).await;
            }
            Some(user) => {
                // A refresh: same user, new roles and expiry; subscriptions are checked again below. A user who
                // keeps one connection open for months is still around: their last sign-in moves too.
                user.identity = identity.clone();
                refreshed = true;
                self.shared.notifier.remember_user(&identity.user_id);
            }
            None => {
                let max = self.shared.config.limits.max_connections_per_user;
                let Some(permit) = self.shared.connections.authenticate(&identity.user_id, max) else {
                    info!(session = %self.id, user = %identity.user_id, "refused: too many connections for this user");
                    return self.disconnect(CloseCode::UserConnectionLimit).await;
                };
                info!(session = %self.id, user = %identity.user_id, "authenticated");
                self.shared.directory.set_user(&self.id, &identity.user_id);
                self.user = Some(User { identity: identity.clone(), _permit: permit });
                self.permit.authenticated();
            }
        }
        self.state = State::Authenticated;
        // The session lasts as long as the token is accepted: its `exp` plus the leeway the verifier allows, or
        // a token accepted within the leeway would be called expired at once.
        let leeway_ms = self.shared.config.auth.leeway_seconds.saturating_mul(1000);
        self.expiry = Expiry::At(instant_of(identity.expires_at_ms.saturating_add(leeway_ms)));
        let Ok(user_id) = Text::new(identity.user_id.clone()) else {
            return self.auth_failed(request_id, Rejection::MissingClaim).await;
        };
        let reply = AuthSuccess { user_id, roles: identity.roles, expires_at: identity.expires_at_ms };
        let flow = self.send(request_id, ServerMessage::AuthSuccess(reply)).await;
        match flow {
            Flow::Continue if refreshed => {
                self.recheck_presence().await;
                self.recheck_subscriptions().await
            }
            Flow::Continue => self.welcome().await,
            Flow::Stop => Flow::Stop,
        }
    }

    async fn auth_failed(&mut self, request_id: Option<RequestId>, rejection: Rejection) -> Flow {
        info!(session = %self.id, reason = rejection.reason(), "auth failed");
        self.send(request_id, ServerMessage::AuthFailed(rejection.payload())).await
    }
}

/// The monotonic instant at which a wall-clock time in Unix milliseconds arrives.
fn instant_of(unix_ms: u64) -> Instant {
    let left = unix_ms.saturating_sub(tidings_protocol::now_ms());
    Instant::now() + std::time::Duration::from_millis(left)
}
