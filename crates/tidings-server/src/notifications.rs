//! Sending notifications: from the HTTP server API, `tidings notify` and built-in rules, to storage and the hub.

use std::sync::Arc;

use serde_json::{Map, Value};
use tidings_protocol::{ErrorCode, ErrorPayload, FieldError};
use tracing::warn;

use crate::fanout::Fanout;
use crate::storage::{NewNotification, Recipients, Storage, StorageError};

/// What a sender asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// `info`, `success`, `warning` or `error`.
    pub level: String,
    /// 1 to 200 characters.
    pub title: String,
    /// At most 4000 characters.
    pub body: String,
    /// Anything to attach.
    pub data: Map<String, Value>,
}

/// Stores notifications and hands them to the fan-out, one sender at a time so that each user's notifications
/// reach this node's hub in `seq` order. (Notifications stored on two nodes at once may reach a third in either
/// order; sessions deduplicate them by `seq`, not by a high-water mark.)
#[derive(Debug)]
pub struct Notifier {
    storage: Arc<dyn Storage>,
    fanout: Arc<Fanout>,
    order: tokio::sync::Mutex<()>,
}

impl Notifier {
    /// A notifier over `storage`, pushing through `fanout`.
    pub fn new(storage: Arc<dyn Storage>, fanout: Arc<Fanout>) -> Arc<Notifier> {
        Arc::new(Notifier { storage, fanout, order: tokio::sync::Mutex::new(()) })
    }

    /// Checks and sends a notification; returns its id and how many users it was stored for. It runs in a task of
    /// its own, so that a caller that goes away cannot stop it between storing and pushing.
    pub async fn send(self: &Arc<Self>, to: Recipients, message: Message) -> Result<(String, usize), ErrorPayload> {
        let this = Arc::clone(self);
        let sent = tokio::spawn(async move { this.send_now(to, message).await }).await;
        sent.unwrap_or_else(|e| Err(ErrorPayload::new(ErrorCode::Internal, format!("sending failed: {e}"))))
    }

    async fn send_now(&self, to: Recipients, message: Message) -> Result<(String, usize), ErrorPayload> {
        let errors = check(&to, &message);
        if !errors.is_empty() {
            let summary = errors.first().map(|e| format!(": {} {}", e.pointer, e.reason)).unwrap_or_default();
            return Err(ErrorPayload::with_field_errors(
                ErrorCode::InvalidParams,
                format!("invalid notification{summary}"),
                errors,
            ));
        }
        let id = format!("NTF-{:012x}", rand::random::<u64>() >> 16);
        let new = NewNotification {
            id: id.clone(),
            level: message.level,
            title: message.title,
            body: message.body,
            data: message.data,
        };
        let _turn = self.order.lock().await;
        let records = self.storage.notify(to, new).await.map_err(unavailable)?;
        let count = records.len();
        self.fanout.notifications(records);
        Ok((id, count))
    }
}

fn check(to: &Recipients, message: &Message) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !["info", "success", "warning", "error"].contains(&message.level.as_str()) {
        errors.push(FieldError::new("/level", "must be info, success, warning or error"));
    }
    if !(1..=200).contains(&message.title.chars().count()) {
        errors.push(FieldError::new("/title", "must be 1 to 200 characters"));
    }
    if message.body.chars().count() > 4000 {
        errors.push(FieldError::new("/body", "must be at most 4000 characters"));
    }
    if let Recipients::Users(users) = to {
        if users.is_empty() || users.len() > 1000 {
            errors.push(FieldError::new("/to", "must name 1 to 1000 users, or be \"*\" for everyone"));
        }
        for (n, user) in users.iter().enumerate() {
            if !(1..=256).contains(&user.chars().count()) {
                errors.push(FieldError::new(format!("/to/{n}"), "must be 1 to 256 characters"));
            }
        }
    }
    errors
}

fn unavailable(error: StorageError) -> ErrorPayload {
    warn!("notification storage failed: {error}");
    ErrorPayload::new(ErrorCode::Unavailable, "notifications cannot be stored now; retry later")
        .with_detail("retryAfterMs", 1000)
}
