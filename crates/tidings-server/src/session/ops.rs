//! Resource operations of an authenticated session: create, read, update, delete (subscriptions live in
//! `subscriptions.rs`, since they hold state in the session).
//!
//! Each is one call into the shared resource service; this module only turns its result into the reply, with
//! error pointers moved under `/payload` as the spec's pointers start at the message root.

use tidings_protocol::{ClientMessage, ErrorCode, ErrorPayload, RequestId, ServerMessage};

use crate::auth::Identity;
use crate::resources::{prefix_pointers, Resources};

/// Carries out one operation and returns its reply, or the error to answer with.
pub(super) async fn apply(
    resources: &Resources,
    who: &Identity,
    request_id: Option<&RequestId>,
    operation: ClientMessage,
) -> Result<ServerMessage, ErrorPayload> {
    let result = match operation {
        ClientMessage::Create(create) => resources
            .create(who, request_id.map(RequestId::as_str), create)
            .await
            .map(|c| ServerMessage::Create(c.reply)),
        ClientMessage::Read(read) => resources.read(who, read).await.map(ServerMessage::Read),
        ClientMessage::Update(update) => resources.update(who, update).await.map(|c| ServerMessage::Update(c.reply)),
        ClientMessage::Delete(delete) => resources.delete(who, delete).await.map(|c| ServerMessage::Delete(c.reply)),
        other => {
            let ty = other.message_type();
            Err(ErrorPayload::new(ErrorCode::Unavailable, format!("'{ty}' is not available on this server yet"))
                .with_detail("type", ty.as_str()))
        }
    };
    result.map_err(|error| prefix_pointers(error, "/payload"))
}
