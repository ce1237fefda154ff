//! Operations of an authenticated session: create, read, update, delete, subscribe, unsubscribe.
//!
//! Resources and subscriptions arrive with issues 4 and 5; until then every operation is answered UNAVAILABLE,
//! from this one place, so that they plug in here without touching the session's state machine.

use tidings_protocol::{ClientMessage, ErrorCode, ErrorPayload, ServerMessage};

/// Carries out one operation and returns its reply, or the error to answer with.
pub(super) async fn apply(operation: ClientMessage) -> Result<ServerMessage, ErrorPayload> {
    let ty = operation.message_type();
    Err(ErrorPayload::new(ErrorCode::Unavailable, format!("'{ty}' is not available on this server yet"))
        .with_detail("type", ty.as_str()))
}
