//! An async Rust client for Tidings protocol v1: connect, authenticate, request by requestId, receive pushes.
//!
//! One task per connection owns the socket. Requests get a fresh requestId and wait, with a timeout, for the
//! reply carrying it; every other message (events, notifications, server pings, disconnects) is a push and
//! goes to [`Pushes`]. Server pings are answered with `pong` automatically, as the spec asks of clients.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tidings_protocol::{
    decode_server, encode, Auth, AuthSuccess, ClientMessage, Connect, Connected, DecodeError, DisconnectRequest, Empty,
    Envelope, ErrorPayload, ProtocolVersion, RequestId, ServerMessage, Text, PROTOCOL_VERSION,
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How long a request waits for its reply unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong for a client call.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be opened, or failed.
    Transport(String),
    /// No reply came within the timeout.
    Timeout,
    /// The connection closed before the reply came.
    Closed,
    /// The server answered with `error`.
    Server(ErrorPayload),
    /// The server answered `auth` with `auth_failed`.
    AuthFailed(ErrorPayload),
    /// The server answered with a message of another type than the request calls for.
    Unexpected(Box<ServerMessage>),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Transport(e) => write!(f, "connection failed: {e}"),
            ClientError::Timeout => f.write_str("no reply within the timeout"),
            ClientError::Closed => f.write_str("the connection closed before the reply came"),
            ClientError::Server(e) => write!(f, "server error {e}"),
            ClientError::AuthFailed(e) => write!(f, "authentication failed: {e}"),
            ClientError::Unexpected(m) => write!(f, "unexpected reply of type {}", m.message_type()),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// The server's error payload, for `error` and `auth_failed` replies.
    pub fn payload(&self) -> Option<&ErrorPayload> {
        match self {
            ClientError::Server(e) | ClientError::AuthFailed(e) => Some(e),
            _ => None,
        }
    }
}

/// A message the server sent unasked, or the end of the connection.
#[derive(Debug)]
pub enum Push {
    /// A server message that is not a reply to a pending request.
    Message(Envelope<ServerMessage>),
    /// A text frame the client could not decode (a server bug, or a newer protocol).
    Unreadable {
        /// The text received.
        text: String,
        /// Why it did not decode.
        error: DecodeError,
    },
    /// The socket closed: with the close frame's code and reason when there was one.
    Closed {
        /// The close code.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
}

/// The pushes of one connection, in the order they arrived.
#[derive(Debug)]
pub struct Pushes(mpsc::UnboundedReceiver<Push>);

impl Pushes {
    /// The next push; `None` after `Closed` has been taken.
    pub async fn next(&mut self) -> Option<Push> {
        self.0.recv().await
    }

    /// The next push, or `None` if none comes within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Push> {
        tokio::time::timeout(wait, self.0.recv()).await.ok().flatten()
    }
}

enum Command {
    Text(String),
    Close,
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Envelope<ServerMessage>>>>>;

/// A connection to a Tidings server.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
    /// Random per connection, so that requestIds never repeat across connections.
    id_prefix: u64,
    timeout: Duration,
}

impl Client {
    /// Opens the socket and completes the `connect` handshake.
    pub async fn connect(url: &str) -> Result<(Client, Pushes, Connected), ClientError> {
        let (client, pushes) = Client::open(url).await?;
        let version = ProtocolVersion::new(PROTOCOL_VERSION).map_err(|e| ClientError::Transport(e.to_owned()))?;
        let reply = client
            .request(ClientMessage::Connect(Connect { protocol_version: version, client: client_info() }))
            .await?;
        match reply {
            ServerMessage::Connect(connected) => Ok((client, pushes, connected)),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Opens the socket only, leaving the connection in the `open` state (for tests of the state machine).
    pub async fn open(url: &str) -> Result<(Client, Pushes), ClientError> {
        let (socket, _) =
            tokio_tungstenite::connect_async(url).await.map_err(|e| ClientError::Transport(e.to_string()))?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        tokio::spawn(drive(socket, command_rx, push_tx, Arc::clone(&pending)));
        let client = Client {
            commands,
            pending,
            next_id: Arc::new(AtomicU64::new(1)),
            id_prefix: rand::random(),
            timeout: DEFAULT_TIMEOUT,
        };
        Ok((client, Pushes(push_rx)))
    }

    /// The same connection with another request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Authenticates with `token`.
    pub async fn auth(&self, token: &str) -> Result<AuthSuccess, ClientError> {
        let token = Text::new(token).map_err(|e| ClientError::Transport(e.clone()))?;
        match self.request(ClientMessage::Auth(Auth { token, user_id: None })).await? {
            ServerMessage::AuthSuccess(success) => Ok(success),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Sends `ping` and waits for `pong`.
    pub async fn ping(&self) -> Result<(), ClientError> {
        match self.request(ClientMessage::Ping(Empty {})).await? {
            ServerMessage::Pong(_) => Ok(()),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Sends a request and returns the reply's message; `error` and `auth_failed` replies become errors.
    pub async fn request(&self, message: ClientMessage) -> Result<ServerMessage, ClientError> {
        match self.request_envelope(message).await?.message {
            ServerMessage::Error(error) => Err(ClientError::Server(error)),
            ServerMessage::AuthFailed(error) => Err(ClientError::AuthFailed(error)),
            other => Ok(other),
        }
    }

    /// Sends a request with a fresh requestId and returns the whole reply envelope, whatever its type.
    pub async fn request_envelope(&self, message: ClientMessage) -> Result<Envelope<ServerMessage>, ClientError> {
        // Unique across connections, not only within one: a create's requestId is its idempotency key for a day,
        // so a number that starts again at 1 on every connection would turn a user's next create into a replay.
        let id = format!("r-{:016x}-{}", self.id_prefix, self.next_id.fetch_add(1, Ordering::Relaxed));
        let request_id = RequestId::new(id.clone()).map_err(|e| ClientError::Transport(e.to_owned()))?;
        self.request_text(&id, encode(&Envelope::now(Some(request_id), message))).await
    }

    /// Sends `text` as it is and waits for the reply carrying `request_id` (for tests of malformed input).
    pub async fn request_text(&self, request_id: &str, text: String) -> Result<Envelope<ServerMessage>, ClientError> {
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(request_id.to_owned(), tx);
        if self.commands.send(Command::Text(text)).is_err() {
            lock(&self.pending).remove(request_id);
            return Err(ClientError::Closed);
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => {
                lock(&self.pending).remove(request_id);
                Err(ClientError::Timeout)
            }
        }
    }

    /// Sends a text frame as it is, expecting no reply.
    pub fn send_text(&self, text: String) -> Result<(), ClientError> {
        self.commands.send(Command::Text(text)).map_err(|_| ClientError::Closed)
    }

    /// Sends a message with no requestId, expecting no reply (`pong`, `disconnect`).
    pub fn send(&self, message: ClientMessage) -> Result<(), ClientError> {
        self.send_text(encode(&Envelope::now(None, message)))
    }

    /// Says `disconnect` and lets the server close the socket.
    pub fn disconnect(&self) -> Result<(), ClientError> {
        self.send(ClientMessage::Disconnect(DisconnectRequest::default()))
    }

    /// Closes the socket with a close frame, without `disconnect`.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }
}

fn client_info() -> Option<tidings_protocol::ClientInfo> {
    Some(tidings_protocol::ClientInfo {
        name: Text::new("tidings-client").ok(),
        version: Text::new(env!("CARGO_PKG_VERSION")).ok(),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The connection's task: writes commands, routes replies to their requests and everything else to pushes.
/// It closes the socket when every `Client` handle is gone.
async fn drive(
    socket: Socket,
    mut commands: mpsc::UnboundedReceiver<Command>,
    pushes: mpsc::UnboundedSender<Push>,
    pending: Pending,
) {
    let (mut sink, mut stream) = socket.split();
    let mut writing = true;
    let closed = loop {
        tokio::select! {
            command = commands.recv(), if writing => match command {
                Some(Command::Text(text)) => {
                    if sink.send(WsMessage::text(text)).await.is_err() {
                        break Push::Closed { code: None, reason: "write failed".to_owned() };
                    }
                }
                Some(Command::Close) | None => {
                    writing = false;
                    let frame = CloseFrame { code: WsCloseCode::Normal, reason: "".into() };
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                }
            },
            frame = stream.next() => match frame {
                Some(Ok(WsMessage::Text(text))) => {
                    if let Some(answer) = route(text.as_str(), &pushes, &pending) {
                        let _ = sink.send(WsMessage::text(answer)).await;
                    }
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    let (code, reason) = frame.map_or((None, String::new()), |f| (Some(u16::from(f.code)), f.reason.to_string()));
                    break Push::Closed { code, reason };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Push::Closed { code: None, reason: e.to_string() },
                None => break Push::Closed { code: None, reason: "the connection ended".to_owned() },
            },
        }
    };
    // Dropping the senders of pending requests fails them with `Closed`.
    lock(&pending).clear();
    let _ = pushes.send(closed);
}

/// Delivers one server message; returns the text to send back, if any (the `pong` to a server `ping`).
fn route(text: &str, pushes: &mpsc::UnboundedSender<Push>, pending: &Pending) -> Option<String> {
    let envelope = match decode_server(text) {
        Ok(envelope) => envelope,
        Err(error) => {
            // Its request, if it was a reply, runs into its timeout; the push tells why.
            let _ = pushes.send(Push::Unreadable { text: text.to_owned(), error });
            return None;
        }
    };
    if let Some(waiter) = envelope.request_id.as_ref().and_then(|id| lock(pending).remove(id.as_str())) {
        let _ = waiter.send(envelope);
        return None;
    }
    let answer = matches!(envelope.message, ServerMessage::Ping(_))
        .then(|| encode(&Envelope::now(None, ClientMessage::Pong(Empty {}))));
    let _ = pushes.send(Push::Message(envelope));
    answer
}
