//! The WebSocket connection: frames in (a [`Reader`], read by the session's own task) and frames out (a buffered
//! writer).
//!
//! fastwebsockets was chosen by measurement (issue 3): about 1.3x the echo rate of tokio-tungstenite and about
//! 6 KB per idle connection against tungstenite's 139 KB with default buffers. It does the upgrade; frames are read
//! by [`frames`], which gives its buffer back while the connection is idle (fastwebsockets keeps 8 KiB per
//! connection for good), and written by [`writer`], which appends each frame to a buffer held only while there is
//! something to write. The session waits on its socket, its mailbox and its timers at once, so the read in
//! progress (a frame, or the fragments of a message) lives in the [`Reader`], which owns the read half and survives
//! a turn of the session that ends on something else. One task per connection: no reader task, no channel between
//! them, one wake-up per message. The session writes through [`FrameWriter`], which buffers frames until `flush`,
//! so a burst of replies or events costs one write to the socket.

mod frames;
mod writer;

use std::future::Future;
use std::io;

use fastwebsockets::WebSocket;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use frames::{FrameError, FrameReader, Opcode};
pub use writer::FrameWriter;

use crate::paced::Paced;

/// What the session reads: one whole message or event of the socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A text message (fragments joined), valid UTF-8.
    Text(String),
    /// A binary message, which the protocol does not use.
    Binary,
    /// A WebSocket ping control frame; the session answers with a pong frame.
    Ping(Vec<u8>),
    /// A WebSocket pong control frame.
    Pong,
    /// The client closed the socket, with this code if it gave one.
    Close(Option<u16>),
    /// A message larger than the hard bound: the rest is not read.
    TooBig,
    /// A text message (or a close reason) that is not valid UTF-8.
    InvalidUtf8,
    /// A frame broke RFC 6455 (not masked, reserved bits set, a bad opcode or close code, a fragment out of
    /// place); the session closes with [`PROTOCOL_ERROR`], and nothing more is read.
    ProtocolError,
    /// The socket failed or the client hung up without a close frame; nothing more will come.
    Broken,
}

/// RFC 6455's close code for a peer that broke the WebSocket protocol. Sent with a bare close frame: a client
/// whose frames cannot be read would not read a `disconnect` either.
pub const PROTOCOL_ERROR: u16 = 1002;

/// Where the session's messages come from: the socket's [`Reader`], or a channel in tests and the fuzz target.
pub trait Incoming: Send {
    /// The next message; `None` once nothing more will come. Cancel-safe: a message half read when the future is
    /// dropped stays where it was, and the next call goes on with it.
    fn recv(&mut self) -> impl Future<Output = Option<Inbound>> + Send;
    /// A message that is here now, without waiting for one.
    fn try_recv(&mut self) -> Option<Inbound>;
}

impl Incoming for mpsc::Receiver<Inbound> {
    async fn recv(&mut self) -> Option<Inbound> {
        mpsc::Receiver::recv(self).await
    }

    fn try_recv(&mut self) -> Option<Inbound> {
        mpsc::Receiver::try_recv(self).ok()
    }
}

/// The read half of a connection's WebSocket, as a stream of whole messages that owns the read in progress.
///
/// The session reads only when it is ready for the next message, so a client that sends faster than it is served
/// is slowed by TCP flow control, not buffered: nothing a client sends waits in the server beyond the message
/// being read.
pub struct Reader {
    messages: BoxStream<'static, Inbound>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Incoming for Reader {
    async fn recv(&mut self) -> Option<Inbound> {
        self.messages.next().await
    }

    fn try_recv(&mut self) -> Option<Inbound> {
        // Polled once without a waker of the session's: the socket's readiness is kept by tokio, and the next
        // `recv` registers the session's waker again.
        self.messages.next().now_or_never().flatten()
    }
}

/// What the [`Reader`]'s stream owns between two messages.
struct Reading<R> {
    frames: FrameReader<R>,
    message: Message,
    hard_limit: usize,
    /// The last message was the connection's last (a close, or a reason to close): nothing more is read.
    ended: bool,
}

/// Where the session's frames go. Implemented by [`FrameWriter`] on a socket and by a recorder in tests.
pub trait Outbound: Send {
    /// Queues a text frame; it reaches the socket at the latest on `flush`.
    fn text(&mut self, text: &str) -> impl Future<Output = io::Result<()>> + Send;
    /// Queues a text frame made of `parts`, one after the other (a query's copy of a shared push, `hub::PushText`).
    fn text_in_parts(&mut self, parts: [&str; 3]) -> impl Future<Output = io::Result<()>> + Send;
    /// Queues a pong control frame answering a ping frame.
    fn pong(&mut self, payload: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Writes everything queued.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Sends a close frame and flushes; nothing may follow.
    fn close(&mut self, code: u16, reason: &str) -> impl Future<Output = io::Result<()>> + Send;
}

/// The socket the session writes to: the TCP socket's own write half, or under TLS a half of the TLS stream. One
/// type for both, so that the session is compiled once; a write costs one dynamic call.
pub type Outgoing = Box<dyn AsyncWrite + Send + Unpin>;

/// An upgraded WebSocket as the session's two ends: whole messages in, buffered frames out.
///
/// A plain TCP socket is taken back from the HTTP server whole, and split into its own two halves: the layers the
/// HTTP server keeps around an upgraded socket (its boxed stream, the bytes it read ahead, a lock between the two
/// halves) cost a few percent of a request's round trip. Under TLS the stream is split as it is.
pub fn open(ws: WebSocket<TokioIo<Upgraded>>, hard_limit: usize) -> (Reader, FrameWriter<Outgoing>) {
    // Right after the handshake nothing has been read or written through fastwebsockets, so it holds nothing.
    let upgraded = ws.into_inner().into_inner();
    match upgraded.downcast::<TokioIo<Paced<TcpStream>>>() {
        Ok(parts) => {
            let (read, write) = parts.io.into_inner().into_split();
            (reader(read, &parts.read_buf, hard_limit), FrameWriter::new(Box::new(write)))
        }
        Err(upgraded) => {
            let (read, write) = tokio::io::split(TokioIo::new(upgraded));
            (reader(read, &[], hard_limit), FrameWriter::new(Box::new(write)))
        }
    }
}

/// The messages read from `read`, after the bytes `already` read from it.
fn reader<R>(read: R, already: &[u8], hard_limit: usize) -> Reader
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let frames = FrameReader::new(read, already, hard_limit);
    let reading = Reading { frames, message: Message::default(), hard_limit, ended: false };
    let messages = futures_util::stream::unfold(reading, |mut reading| async move {
        if reading.ended {
            return None;
        }
        loop {
            let Some(inbound) = next(&mut reading.frames, &mut reading.message, reading.hard_limit).await else {
                continue;
            };
            reading.ended = matches!(
                inbound,
                Inbound::Close(_) | Inbound::TooBig | Inbound::InvalidUtf8 | Inbound::ProtocolError | Inbound::Broken
            );
            return Some((inbound, reading));
        }
    });
    Reader { messages: messages.boxed() }
}

/// A message being put together from its fragments.
#[derive(Default)]
struct Message {
    opcode: Option<Opcode>,
    bytes: Vec<u8>,
}

/// Reads one frame; returns what it completes, or `None` for a fragment that does not end a message yet.
async fn next<R: AsyncRead + Unpin>(
    frames: &mut FrameReader<R>,
    message: &mut Message,
    hard_limit: usize,
) -> Option<Inbound> {
    let frame = match frames.next().await {
        Ok(frame) => frame,
        Err(FrameError::TooBig) => return Some(Inbound::TooBig),
        Err(FrameError::Protocol) => return Some(Inbound::ProtocolError),
        Err(FrameError::Broken) => return Some(Inbound::Broken),
    };
    match frame.opcode {
        Opcode::Ping => Some(Inbound::Ping(frame.payload)),
        Opcode::Pong => Some(Inbound::Pong),
        Opcode::Close => Some(close(&frame.payload)),
        Opcode::Text | Opcode::Binary if frame.fin && message.opcode.is_none() => {
            Some(complete(frame.opcode, frame.payload))
        }
        Opcode::Text | Opcode::Binary if message.opcode.is_none() => {
            message.opcode = Some(frame.opcode);
            message.bytes = frame.payload;
            None
        }
        Opcode::Continuation if message.opcode.is_some() => {
            // Each frame is bounded by the reader; the sum of a fragmented message is bounded here.
            if message.bytes.len() + frame.payload.len() > hard_limit {
                return Some(Inbound::TooBig);
            }
            message.bytes.extend_from_slice(&frame.payload);
            if !frame.fin {
                return None;
            }
            let opcode = message.opcode.take().unwrap_or(Opcode::Binary);
            Some(complete(opcode, std::mem::take(&mut message.bytes)))
        }
        // A new message inside a fragmented one, or a continuation of nothing.
        _ => Some(Inbound::ProtocolError),
    }
}

/// A close frame's payload: empty, or a valid code (RFC 6455, 7.4) and a UTF-8 reason.
fn close(payload: &[u8]) -> Inbound {
    match payload {
        [] => Inbound::Close(None),
        [code_high, code_low, reason @ ..] => {
            let code = u16::from_be_bytes([*code_high, *code_low]);
            // 1004-1006 and 1015 are reserved for reports and may never be sent; 1016-2999 are unassigned.
            if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                return Inbound::ProtocolError;
            }
            if std::str::from_utf8(reason).is_err() {
                return Inbound::InvalidUtf8;
            }
            Inbound::Close(Some(code))
        }
        [_] => Inbound::ProtocolError,
    }
}

fn complete(opcode: Opcode, bytes: Vec<u8>) -> Inbound {
    match opcode {
        Opcode::Text => match String::from_utf8(bytes) {
            Ok(text) => Inbound::Text(text),
            Err(_) => Inbound::InvalidUtf8,
        },
        _ => Inbound::Binary,
    }
}
