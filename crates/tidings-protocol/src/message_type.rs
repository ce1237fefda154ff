//! The message types of protocol v1 (the 16 of 1.0, and `batch` since 1.2) and which side sends each: the one module that the envelope, the client's
//! messages and the server's messages all import, so that none of them imports another.

use std::fmt;

/// The message types of protocol v1: the 16 of 1.0, and `batch`, added in 1.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// `connect`
    Connect,
    /// `disconnect`
    Disconnect,
    /// `ping`
    Ping,
    /// `pong`
    Pong,
    /// `auth`
    Auth,
    /// `auth_success`
    AuthSuccess,
    /// `auth_failed`
    AuthFailed,
    /// `create`
    Create,
    /// `read`
    Read,
    /// `update`
    Update,
    /// `delete`
    Delete,
    /// `subscribe`
    Subscribe,
    /// `unsubscribe`
    Unsubscribe,
    /// `notification`
    Notification,
    /// `event`
    Event,
    /// `error`
    Error,
    /// `batch` (protocol 1.2)
    Batch,
}

impl MessageType {
    /// All types: the 16 of the design notes' table, in its order, then those later minor versions added.
    pub const ALL: [MessageType; 17] = [
        MessageType::Connect,
        MessageType::Disconnect,
        MessageType::Ping,
        MessageType::Pong,
        MessageType::Auth,
        MessageType::AuthSuccess,
        MessageType::AuthFailed,
        MessageType::Create,
        MessageType::Read,
        MessageType::Update,
        MessageType::Delete,
        MessageType::Subscribe,
        MessageType::Unsubscribe,
        MessageType::Notification,
        MessageType::Event,
        MessageType::Error,
        MessageType::Batch,
    ];

    /// The type as it appears in the envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Connect => "connect",
            MessageType::Disconnect => "disconnect",
            MessageType::Ping => "ping",
            MessageType::Pong => "pong",
            MessageType::Auth => "auth",
            MessageType::AuthSuccess => "auth_success",
            MessageType::AuthFailed => "auth_failed",
            MessageType::Create => "create",
            MessageType::Read => "read",
            MessageType::Update => "update",
            MessageType::Delete => "delete",
            MessageType::Subscribe => "subscribe",
            MessageType::Unsubscribe => "unsubscribe",
            MessageType::Notification => "notification",
            MessageType::Event => "event",
            MessageType::Error => "error",
            MessageType::Batch => "batch",
        }
    }

    /// The type named `name`, if protocol v1 has one.
    pub fn parse(name: &str) -> Option<MessageType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether a client may send this type.
    pub fn sent_by(self, side: Side) -> bool {
        use MessageType::*;
        match side {
            Side::Client => !matches!(self, AuthSuccess | AuthFailed | Notification | Event | Error),
            Side::Server => self != Auth,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which end of the socket sends a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The client: a browser, the SDK, `tidings client`.
    Client,
    /// The Tidings server.
    Server,
}

impl Side {
    /// `client` or `server`, as schema/ names its folders.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }

    /// The other end of the socket.
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}
