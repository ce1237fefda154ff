//! Server frames out (RFC 6455, section 5.2): each frame's header and payload appended to a write buffer that
//! exists only while there is something to write, and written to the socket in one write per burst.
//!
//! A server's frames are unmasked and never fragmented, so a header is two to ten bytes put in front of the
//! payload. Writing them here, rather than through fastwebsockets' writer, lets a fan-out turn (twenty events for
//! one subscriber, say) cost one copy of each event into the buffer and one write, with no future per frame.

use std::io;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::Outbound;

/// How much a connection's write buffer holds before it writes to the socket without waiting for `flush`: a burst
/// of a busy topic's events goes out in one write (the writes themselves are most of a fan-out's cost).
const WRITE_BUFFER: usize = 64 * 1024;

/// The buffer a burst starts with: most bursts fit (a few replies, a dozen events), and growing it from nothing
/// one frame at a time would reallocate several times a turn.
const FIRST_BUFFER: usize = 8 * 1024;

/// How many drained buffers each thread keeps for the next burst, and the largest it keeps: a burst's buffer of
/// [`FIRST_BUFFER`] taken from the allocator and given back every turn cost a request's round trip about 1%
/// (glibc consolidates its free lists before every allocation that size). They are the thread's, not a
/// connection's: an idle connection still holds none.
const POOLED: usize = 16;
const POOLED_CAPACITY: usize = 2 * WRITE_BUFFER;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty buffer for a burst of at least `len` bytes: a pooled one if the thread has one.
fn take_buffer(len: usize) -> Vec<u8> {
    let mut buffer = POOL.with(|pool| pool.borrow_mut().pop()).unwrap_or_default();
    buffer.reserve(len.max(FIRST_BUFFER));
    buffer
}

/// A drained buffer back to the thread's pool, or to the allocator when the pool is full or the buffer large.
fn give_back(mut buffer: Vec<u8>) {
    if buffer.capacity() == 0 || buffer.capacity() > POOLED_CAPACITY {
        return;
    }
    buffer.clear();
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED {
            pool.push(buffer);
        }
    });
}

/// RFC 6455's opcodes of the frames a server sends.
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PONG: u8 = 0xA;

/// Writes frames to a socket through a buffer that an idle connection does not hold: tokio's `BufWriter` kept its
/// capacity for the connection's whole life, which was a sixth of an idle connection's memory.
///
/// It sets no timeout of its own: the socket under it is [`crate::paced::Paced`], which fails a write whose
/// reader falls behind, and so does the `flush` that waits on it.
pub struct FrameWriter<W> {
    socket: W,
    buffer: Vec<u8>,
    /// How much of the buffer the socket has taken: a write cut short by a cancelled turn goes on from here.
    written: usize,
}

impl<W> std::fmt::Debug for FrameWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameWriter").field("buffered", &self.buffer.len()).finish_non_exhaustive()
    }
}

impl<W: AsyncWrite + Unpin + Send> FrameWriter<W> {
    pub fn new(socket: W) -> Self {
        FrameWriter { socket, buffer: Vec::new(), written: 0 }
    }

    /// Queues one frame (FIN set) whose payload is `parts` joined; writes the buffer out first if the frame would
    /// overflow it. A frame larger than the buffer is still queued whole: the next write takes it.
    async fn frame(&mut self, opcode: u8, parts: &[&[u8]]) -> io::Result<()> {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        if !self.buffer.is_empty() && self.buffer.len() + len + 10 > WRITE_BUFFER {
            self.drain().await?;
        }
        if self.buffer.capacity() == 0 {
            self.buffer = take_buffer(len + 10);
        }
        header(&mut self.buffer, opcode, len);
        for part in parts {
            self.buffer.extend_from_slice(part);
        }
        Ok(())
    }

    /// Writes the buffer out; once all of it is written, gives its memory back.
    async fn drain(&mut self) -> io::Result<()> {
        while self.written < self.buffer.len() {
            let n = self.socket.write(&self.buffer[self.written..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.written += n;
        }
        give_back(std::mem::take(&mut self.buffer));
        self.written = 0;
        Ok(())
    }
}

/// A frame's header as a server writes it: FIN, the opcode, and the payload's length in the shortest form.
fn header(buffer: &mut Vec<u8>, opcode: u8, len: usize) {
    buffer.push(0x80 | opcode);
    match len {
        0..=125 => buffer.push(len as u8),
        126..=0xFFFF => {
            buffer.push(126);
            buffer.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            buffer.push(127);
            buffer.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

impl<W: AsyncWrite + Unpin + Send> Outbound for FrameWriter<W> {
    async fn text(&mut self, text: &str) -> io::Result<()> {
        self.frame(TEXT, &[text.as_bytes()]).await
    }

    async fn text_in_parts(&mut self, [a, b, c]: [&str; 3]) -> io::Result<()> {
        self.frame(TEXT, &[a.as_bytes(), b.as_bytes(), c.as_bytes()]).await
    }

    async fn pong(&mut self, payload: &[u8]) -> io::Result<()> {
        self.frame(PONG, &[payload]).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.drain().await?;
        self.socket.flush().await
    }

    async fn close(&mut self, code: u16, reason: &str) -> io::Result<()> {
        self.frame(CLOSE, &[&code.to_be_bytes(), reason.as_bytes()]).await?;
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::{FrameWriter, WRITE_BUFFER};
    use crate::connection::Outbound;

    /// Frames as a client reads them: (opcode, payload), FIN checked, no mask.
    fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            assert_eq!(bytes[0] & 0xF0, 0x80, "FIN set, no reserved bits");
            assert_eq!(bytes[1] & 0x80, 0, "a server's frames are not masked");
            let (len, at) = match bytes[1] & 0x7F {
                126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
                127 => (u64::from_be_bytes(bytes[2..10].try_into().expect("eight bytes")) as usize, 10),
                n => (n as usize, 2),
            };
            out.push((bytes[0] & 0x0F, bytes[at..at + len].to_vec()));
            bytes = &bytes[at + len..];
        }
        out
    }

    #[tokio::test]
    async fn frames_of_every_length_form_reach_the_socket_in_order_on_flush() {
        let mut writer = FrameWriter::new(Vec::new());
        let (short, medium, long) = ("a".repeat(125), "b".repeat(126), "c".repeat(70_000));
        for text in [short.as_str(), medium.as_str(), long.as_str(), ""] {
            writer.text(text).await.expect("queued");
        }
        writer.pong(b"hi").await.expect("queued");
        writer.close(1000, "bye").await.expect("written");
        let got = frames(&writer.socket);
        let want: Vec<(u8, Vec<u8>)> = vec![
            (1, short.into_bytes()),
            (1, medium.into_bytes()),
            (1, long.into_bytes()),
            (1, Vec::new()),
            (0xA, b"hi".to_vec()),
            (8, [&1000_u16.to_be_bytes()[..], b"bye"].concat()),
        ];
        assert_eq!(got, want);
        assert_eq!(writer.buffer.capacity(), 0, "a flushed writer holds no buffer");
    }

    /// A frame written in parts is the frame of the parts joined: one header, for the whole length.
    #[tokio::test]
    async fn a_frame_in_parts_is_one_frame_of_the_parts_joined() {
        let mut writer = FrameWriter::new(Vec::new());
        let long = "y".repeat(200);
        writer.text_in_parts([r#"{"id":"#, r#""q-1""#, &long]).await.expect("queued");
        writer.text_in_parts(["whole", "", ""]).await.expect("queued");
        writer.flush().await.expect("written");
        let want = vec![(1, format!(r#"{{"id":"q-1"{long}"#).into_bytes()), (1, b"whole".to_vec())];
        assert_eq!(frames(&writer.socket), want);
    }

    #[tokio::test]
    async fn nothing_reaches_the_socket_before_flush_until_the_buffer_is_full() {
        let mut writer = FrameWriter::new(Vec::new());
        writer.text("first").await.expect("queued");
        assert!(writer.socket.is_empty(), "a frame waits in the buffer for flush");
        let big = "x".repeat(WRITE_BUFFER);
        writer.text(&big).await.expect("written");
        assert_eq!(frames(&writer.socket), vec![(1, b"first".to_vec())], "the full buffer went out first");
        writer.flush().await.expect("written");
        assert_eq!(frames(&writer.socket).len(), 2);
    }
}
