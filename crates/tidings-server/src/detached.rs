//! Work that runs to its end once begun: a change, or a notification, finishes even when its caller hangs up.

use std::future::Future;

use tidings_protocol::ErrorPayload;

use crate::errors::internal;

/// Runs `work` in a task of its own and waits for it. A caller that goes away (an HTTP client that hangs up, a
/// session that ends) drops only the waiting: a write that storage may commit anyway is still followed by what
/// comes after it, such as publishing its event or pushing a stored notification.
pub async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, ErrorPayload>> + Send + 'static,
) -> Result<T, ErrorPayload> {
    // The work stays in the caller's span, so that a trace shows it under the request that asked for it.
    let work = tracing::Instrument::in_current_span(work);
    tokio::spawn(work).await.unwrap_or_else(|e| Err(internal(&format!("a change failed: {e}"))))
}
