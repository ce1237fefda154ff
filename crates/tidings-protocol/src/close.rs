//! WebSocket close codes of protocol v1 and whether a client should reconnect after each.
//!
//! Tidings' own codes fall in two ranges so that a client knows what to do with a code it has never seen:
//! 4000-4499 mean "reconnect (with backoff)", 4500-4999 mean "do not reconnect without a change" (a new
//! token, a fixed client). Standard codes below 4000 are listed one by one.

/// A close code the Tidings server sends, with the `disconnect` message that precedes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the client sent `disconnect`, or asked to close.
    Normal,
    /// 1001: the server is shutting down or restarting.
    GoingAway,
    /// 1007: a text frame was not valid UTF-8.
    InvalidPayload,
    /// 1008: the client kept sending while rate limited (`limits.rate_abuse_after` refusals in a row).
    PolicyViolation,
    /// 1009: a frame exceeded the hard size bound.
    MessageTooBig,
    /// 1011: the server failed unexpectedly.
    InternalError,
    /// 4000: nothing was received within the idle timeout.
    HeartbeatTimeout,
    /// 4001: the connection's outbound queue overflowed; resume with `since`.
    SlowConsumer,
    /// 4002: the server has reached its connection limit.
    ServerBusy,
    /// 4500: the connection did not authenticate within the auth timeout.
    AuthTimeout,
    /// 4501: the token expired and no fresh one came within the grace period.
    TokenExpired,
    /// 4502: an operator disconnected this connection or every connection of this user.
    Kicked,
    /// 4503: the user already holds the maximum number of connections.
    UserConnectionLimit,
}

impl CloseCode {
    /// Every close code the server sends.
    pub const ALL: [CloseCode; 13] = [
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::InvalidPayload,
        CloseCode::PolicyViolation,
        CloseCode::MessageTooBig,
        CloseCode::InternalError,
        CloseCode::HeartbeatTimeout,
        CloseCode::SlowConsumer,
        CloseCode::ServerBusy,
        CloseCode::AuthTimeout,
        CloseCode::TokenExpired,
        CloseCode::Kicked,
        CloseCode::UserConnectionLimit,
    ];

    /// The number in the close frame and in `disconnect.code`.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::InvalidPayload => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::MessageTooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::HeartbeatTimeout => 4000,
            CloseCode::SlowConsumer => 4001,
            CloseCode::ServerBusy => 4002,
            CloseCode::AuthTimeout => 4500,
            CloseCode::TokenExpired => 4501,
            CloseCode::Kicked => 4502,
            CloseCode::UserConnectionLimit => 4503,
        }
    }

    /// The close frame's reason and `disconnect.reason` (short: a close reason has at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "closed by the client",
            CloseCode::GoingAway => "server shutting down",
            CloseCode::InvalidPayload => "text frame is not valid UTF-8",
            CloseCode::PolicyViolation => "policy violation",
            CloseCode::MessageTooBig => "message too big",
            CloseCode::InternalError => "internal error",
            CloseCode::HeartbeatTimeout => "heartbeat timeout",
            CloseCode::SlowConsumer => "slow consumer",
            CloseCode::ServerBusy => "server connection limit reached",
            CloseCode::AuthTimeout => "authentication timeout",
            CloseCode::TokenExpired => "token expired",
            CloseCode::Kicked => "disconnected by an operator",
            CloseCode::UserConnectionLimit => "too many connections for this user",
        }
    }

    /// Whether a client should reconnect after this code, as `disconnect.reconnect` says.
    pub fn reconnect(self) -> bool {
        should_reconnect(self.code())
    }

    /// The known code with this number.
    pub fn from_code(code: u16) -> Option<CloseCode> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// Whether a client should reconnect after a close with `code`, for any code, known or not.
///
/// 1000 and the policy codes 1002, 1003, 1007, 1008, 1009 and 1010 mean no; other standard codes (1001,
/// 1006 abnormal closure, 1011-1014) mean yes; 3000-3999 (registered by other protocols) yes; 4000-4499 yes;
/// 4500-4999 no.
pub fn should_reconnect(code: u16) -> bool {
    !matches!(code, 1000 | 1002 | 1003 | 1007 | 1008 | 1009 | 1010 | 4500..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidings_codes_follow_their_range() {
        for close in CloseCode::ALL {
            let code = close.code();
            if (4000..4500).contains(&code) {
                assert!(close.reconnect(), "{close:?}");
            }
            if (4500..5000).contains(&code) {
                assert!(!close.reconnect(), "{close:?}");
            }
            assert!(close.reason().len() <= 123, "a close reason must fit a close frame");
            assert_eq!(CloseCode::from_code(code), Some(close));
        }
    }

    #[test]
    fn unknown_codes_are_judged_by_range() {
        assert!(should_reconnect(4321));
        assert!(!should_reconnect(4777));
        assert!(should_reconnect(1006));
        assert!(!should_reconnect(1000));
        assert!(!CloseCode::MessageTooBig.reconnect());
        assert!(CloseCode::GoingAway.reconnect());
    }
}
