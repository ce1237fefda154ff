//! Client frames read off the socket (RFC 6455, section 5.2), with a read buffer that exists only while there is
//! something to read.
//!
//! fastwebsockets allocates an 8 KiB read buffer with each connection and keeps it, and its capacity after the
//! largest message, for the connection's whole life: half of what an idle connection cost. Here the buffer is
//! given back whenever the socket has nothing more to read and nothing is left in it, so an idle connection
//! holds none; a busy one keeps it between frames that arrive together. The writes are `writer.rs`'s.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};

/// How much is read from the socket at a time, at least: a usual message and the head of the next.
const CHUNK: usize = 8 * 1024;

/// How much an idle connection's first read takes onto the stack: a usual request, whole.
const FIRST_READ: usize = 2 * 1024;

/// A frame's opcode (RFC 6455, section 5.2); the others are reserved, and a frame with one is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn of(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// One frame from the client, its payload unmasked.
pub(super) struct Frame {
    pub fin: bool,
    pub opcode: Opcode,
    pub payload: Vec<u8>,
}

/// Why no frame could be read; nothing more is read after any of them.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FrameError {
    /// The frame's payload is longer than the bound; it was not read.
    TooBig,
    /// The frame broke RFC 6455: reserved bits set (no extension is negotiated), a reserved opcode, no mask, a
    /// fragmented control frame or one longer than 125 bytes.
    Protocol,
    /// The socket failed, or the client hung up, before a whole frame came.
    Broken,
}

/// Reads client frames from `stream`, each with a payload of at most `max_payload` bytes.
pub(super) struct FrameReader<R> {
    stream: R,
    buffer: BytesMut,
    max_payload: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads from `stream`, after the bytes in `read` that were read from it already (by the HTTP server, past the
    /// upgrade request: a client may send its first frames without waiting for the upgrade's answer).
    pub fn new(stream: R, read: &[u8], max_payload: usize) -> Self {
        FrameReader { stream, buffer: BytesMut::from(read), max_payload }
    }

    /// The next frame. Cancel-safe: nothing is taken from the buffer until the whole frame is in it, so a call
    /// dropped half way leaves what it read for the next one.
    pub async fn next(&mut self) -> Result<Frame, FrameError> {
        self.fill(2).await?;
        let (first, second) = (self.buffer[0], self.buffer[1]);
        if first & 0x70 != 0 {
            return Err(FrameError::Protocol);
        }
        let fin = first & 0x80 != 0;
        let opcode = Opcode::of(first & 0x0F).ok_or(FrameError::Protocol)?;
        // Section 5.1: "a server MUST close the connection upon receiving a frame that is not masked".
        if second & 0x80 == 0 {
            return Err(FrameError::Protocol);
        }
        let extended = match second & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let head = 2 + extended + 4;
        self.fill(head).await?;
        let length = match extended {
            0 => u64::from(second & 0x7F),
            2 => u64::from(u16::from_be_bytes([self.buffer[2], self.buffer[3]])),
            _ => self.buffer[2..10].iter().fold(0, |n, &byte| (n << 8) | u64::from(byte)),
        };
        if opcode.is_control() && (!fin || length > 125) {
            return Err(FrameError::Protocol);
        }
        let length = match usize::try_from(length) {
            Ok(length) if length <= self.max_payload => length,
            _ => return Err(FrameError::TooBig),
        };
        let mask = [self.buffer[head - 4], self.buffer[head - 3], self.buffer[head - 2], self.buffer[head - 1]];
        self.fill(head.checked_add(length).ok_or(FrameError::TooBig)?).await?;
        // Copied out rather than split off: the message is copied into its own `Vec` anyway, and a split would
        // turn the buffer into a shared one (an allocation of its own).
        let mut payload = self.buffer[head..head + length].to_vec();
        self.buffer.advance(head + length);
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        Ok(Frame { fin, opcode, payload })
    }

    /// Waits until the buffer holds at least `wanted` bytes.
    async fn fill(&mut self, wanted: usize) -> Result<(), FrameError> {
        poll_fn(|cx| self.poll_fill(cx, wanted)).await
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>, wanted: usize) -> Poll<Result<(), FrameError>> {
        while self.buffer.len() < wanted {
            if self.buffer.capacity() == 0 {
                // No buffer: the connection was idle. The session looks at its socket whenever anything wakes it
                // (a push, a timer), so the first read goes onto the stack, and only bytes that came get a buffer.
                let mut first = [0_u8; FIRST_READ];
                let mut read = ReadBuf::new(&mut first);
                match Pin::new(&mut self.stream).poll_read(cx, &mut read) {
                    Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                        // Less than the stack's room came: likely all there is (a request, whole), so a buffer of
                        // its size, which its frames then take whole, and the connection is idle again without
                        // one. (A buffer of a chunk, allocated and freed for each request, cost about 1% of a
                        // round trip.) When the room was filled, more is coming: a chunk.
                        let got = read.filled().len();
                        self.buffer =
                            BytesMut::with_capacity(if got < FIRST_READ { wanted.max(got) } else { wanted.max(CHUNK) });
                        self.buffer.extend_from_slice(read.filled());
                        continue;
                    }
                    Poll::Ready(_) => return Poll::Ready(Err(FrameError::Broken)),
                    Poll::Pending => {
                        // Frames taken whole leave an empty buffer that still holds its memory: given back.
                        self.buffer = BytesMut::new();
                        return Poll::Pending;
                    }
                }
            }
            self.buffer.reserve((wanted - self.buffer.len()).max(CHUNK));
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.buffer) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Err(FrameError::Broken)),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => {
                    // Nothing to read and nothing kept: the connection is idle, and holds no buffer while it is.
                    if self.buffer.is_empty() {
                        self.buffer = BytesMut::new();
                    }
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::{FrameError, FrameReader, Opcode};

    /// A client frame: masked with a fixed key, as RFC 6455 requires of a client.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0x12, 0x34, 0x56, 0x78];
        let mut bytes = vec![first];
        match payload.len() {
            n if n < 126 => bytes.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        bytes.extend_from_slice(&key);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        bytes
    }

    /// Frames that arrive a byte at a time, or many in one read, come out whole and unmasked; and between them,
    /// once everything read was taken, the reader holds no buffer.
    #[tokio::test]
    async fn frames_come_whole_however_the_bytes_arrive_and_an_idle_reader_holds_no_buffer() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let mut reader = FrameReader::new(server, &[], 100_000);
        let mut client = client;
        let long = "x".repeat(70_000);
        let mut bytes = masked(0x81, b"hello");
        bytes.extend(masked(0x01, b"frag"));
        bytes.extend(masked(0x80, b"ment"));
        bytes.extend(masked(0x89, b"ping"));
        let writer = tokio::spawn(async move {
            for byte in &bytes {
                client.write_all(&[*byte]).await.expect("write");
            }
            client.write_all(&masked(0x82, long.as_bytes())).await.expect("write");
            client
        });
        let mut got = Vec::new();
        for _ in 0..5 {
            let frame = reader.next().await.expect("a frame");
            got.push((
                frame.fin,
                frame.opcode,
                frame.payload.len(),
                frame.payload[..4.min(frame.payload.len())].to_vec(),
            ));
        }
        assert_eq!(
            got,
            vec![
                (true, Opcode::Text, 5, b"hell".to_vec()),
                (false, Opcode::Text, 4, b"frag".to_vec()),
                (true, Opcode::Continuation, 4, b"ment".to_vec()),
                (true, Opcode::Ping, 4, b"ping".to_vec()),
                (true, Opcode::Binary, 70_000, b"xxxx".to_vec()),
            ]
        );
        let mut client = writer.await.expect("the writer ran");
        // Nothing more has come: a read waits, and while it waits the reader holds no memory for it.
        assert!(futures_util::FutureExt::now_or_never(reader.next()).is_none());
        assert_eq!(reader.buffer.capacity(), 0, "an idle reader keeps no buffer");
        client.write_all(&masked(0x81, b"again")).await.expect("write");
        assert_eq!(&reader.next().await.expect("a frame").payload[..], b"again");
        drop(client);
        assert_eq!(reader.next().await.err(), Some(FrameError::Broken), "the client hung up");
    }

    /// What RFC 6455 forbids is refused, and a payload over the bound is refused before it is read.
    #[tokio::test]
    async fn frames_that_break_the_rfc_or_the_bound_are_refused() {
        let mut unmasked = vec![0x81, 0x02];
        unmasked.extend_from_slice(b"hi");
        let mut too_big = vec![0x82, 0x80 | 127];
        too_big.extend_from_slice(&(1_u64 << 40).to_be_bytes());
        too_big.extend_from_slice(&[0; 4]);
        for (what, bytes, error) in [
            ("a reserved bit", masked(0xC1, b"hi"), FrameError::Protocol),
            ("a reserved opcode", masked(0x83, b"hi"), FrameError::Protocol),
            ("no mask", unmasked, FrameError::Protocol),
            ("a fragmented ping", masked(0x09, b"hi"), FrameError::Protocol),
            ("a close of 126 bytes", masked(0x88, &[b'x'; 126]), FrameError::Protocol),
            ("a payload over the bound", masked(0x81, &[b'x'; 101]), FrameError::TooBig),
            ("a terabyte's header", too_big, FrameError::TooBig),
        ] {
            let (mut client, server) = tokio::io::duplex(1024);
            let mut reader = FrameReader::new(server, &[], 100);
            client.write_all(&bytes).await.expect("write");
            assert_eq!(reader.next().await.err(), Some(error), "{what}");
        }
    }
}
