//! A session's timers: the sign-in deadline, the idle timeout, and its token's expiry and grace period.

use std::time::Duration;

use tidings_protocol::{CloseCode, ErrorCode, ErrorPayload, RequestId, ServerMessage};
use tokio::time::Instant;
use tracing::info;

use super::{Flow, Session, State};
use crate::connection::Outbound;

/// Where the session's token stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expiry {
    /// No token yet.
    None,
    /// Valid until this instant.
    At(Instant),
    /// Expired; a fresh `auth` is accepted until this instant, then the session ends with 4501.
    Grace(Instant),
}

/// The next thing that happens by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Deadline {
    AuthTimeout,
    Idle,
    TokenExpires,
    GraceOver,
}

impl<O: Outbound> Session<O> {
    pub(super) fn next_deadline(&self) -> (Instant, Deadline) {
        let config = &self.shared.config;
        let mut next = (self.last_heard + config.idle_timeout(), Deadline::Idle);
        let mut consider = |at: Instant, what: Deadline| {
            if at < next.0 {
                next = (at, what);
            }
        };
        if self.state != State::Authenticated {
            consider(self.opened_at + config.auth_timeout(), Deadline::AuthTimeout);
        }
        match self.expiry {
            Expiry::At(at) => consider(at, Deadline::TokenExpires),
            Expiry::Grace(until) => consider(until, Deadline::GraceOver),
            Expiry::None => {}
        }
        next
    }

    pub(super) async fn on_deadline(&mut self, what: Deadline) -> Flow {
        match what {
            Deadline::AuthTimeout => self.disconnect(CloseCode::AuthTimeout).await,
            Deadline::Idle => self.disconnect(CloseCode::HeartbeatTimeout).await,
            Deadline::GraceOver => self.disconnect(CloseCode::TokenExpired).await,
            Deadline::TokenExpires => {
                let grace = self.shared.config.token_grace();
                self.expiry = Expiry::Grace(Instant::now() + grace);
                let expired_at = self.user.as_ref().map_or(0, |u| u.identity.expires_at_ms);
                info!(session = %self.id, "token expired; grace period started");
                let error =
                    token_expired("the session's token expired; send auth with a fresh token", expired_at, grace);
                self.send(None, ServerMessage::Error(error)).await
            }
        }
    }

    /// Refuses an operation while the session's token is expired and its grace period runs.
    pub(super) async fn refuse_expired(&mut self, request_id: Option<RequestId>) -> Flow {
        let Expiry::Grace(until) = self.expiry else { return Flow::Continue };
        let expired_at = self.user.as_ref().map_or(0, |u| u.identity.expires_at_ms);
        let left = until.saturating_duration_since(Instant::now());
        let error = token_expired("the session's token expired; send auth with a fresh token", expired_at, left);
        self.send(request_id, ServerMessage::Error(error)).await
    }
}

/// The TOKEN_EXPIRED error: when the token expired, and how much of the grace period is left.
fn token_expired(message: &str, expired_at_ms: u64, left: Duration) -> ErrorPayload {
    let grace_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
    ErrorPayload::new(ErrorCode::TokenExpired, message)
        .with_detail("expiredAt", expired_at_ms)
        .with_detail("graceMs", grace_ms)
}
