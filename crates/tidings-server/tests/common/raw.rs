//! A raw WebSocket client over TCP, to send what well-behaved libraries refuse to: bad UTF-8, huge frame headers,
//! fragments, and no pongs at all.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::PATIENCE;

/// Opcodes of RFC 6455.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A frame as the server sent it.
#[derive(Debug)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The payload as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// The code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A raw connection that has completed the HTTP upgrade.
pub struct RawSocket {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// Sends the upgrade request with `headers` and returns the HTTP status line and the socket.
pub async fn upgrade(addr: SocketAddr, headers: &[(&str, &str)]) -> (String, RawSocket) {
    let stream = TcpStream::connect(addr).await.expect("tcp connect");
    upgrade_on(stream, addr, headers).await
}

/// A TCP connection whose receive buffer is as small as the kernel allows, so that what the client does not read
/// stays on the server's side instead of filling the kernel's buffers.
pub async fn narrow(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(addr).await.expect("tcp connect")
}

/// A socket that upgraded successfully over a [`narrow`] connection.
pub async fn open_narrow(addr: SocketAddr) -> RawSocket {
    let (status, socket) = upgrade_on(narrow(addr).await, addr, &[]).await;
    assert!(status.contains("101"), "upgrade refused: {status}");
    socket
}

/// Sends the upgrade request on `stream`.
pub async fn upgrade_on(stream: TcpStream, addr: SocketAddr, headers: &[(&str, &str)]) -> (String, RawSocket) {
    upgrade_with(stream, addr, headers, &[]).await
}

/// Sends the upgrade request and, in the same write, a text frame for each of `texts`, as a client that does not
/// wait for the upgrade's answer before its first messages.
pub async fn upgrade_sending(addr: SocketAddr, texts: &[String]) -> (String, RawSocket) {
    let stream = TcpStream::connect(addr).await.expect("tcp connect");
    upgrade_with(stream, addr, &[], texts).await
}

async fn upgrade_with(
    mut stream: TcpStream,
    addr: SocketAddr,
    headers: &[(&str, &str)],
    texts: &[String],
) -> (String, RawSocket) {
    let mut request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    for text in texts {
        bytes.extend(encode_frame(TEXT, true, text.len() as u64, text.as_bytes()));
    }
    stream.write_all(&bytes).await.expect("send upgrade");
    let mut socket = RawSocket { stream, buffer: Vec::new() };
    let head = socket.read_until_blank_line().await;
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, socket)
}

/// A socket that upgraded successfully.
pub async fn open(addr: SocketAddr) -> RawSocket {
    let (status, socket) = upgrade(addr, &[]).await;
    assert!(status.contains("101"), "upgrade refused: {status}");
    socket
}

impl RawSocket {
    async fn fill(&mut self) -> bool {
        let mut chunk = [0_u8; 4096];
        match tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => panic!("the server sent nothing within {PATIENCE:?}"),
        }
    }

    async fn read_until_blank_line(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buffer.drain(..end + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            if !self.fill().await {
                return String::from_utf8_lossy(&self.buffer).into_owned();
            }
        }
    }

    /// Sends one frame, masked as a client must, with `fin` as given.
    pub async fn send_frame(&mut self, opcode: u8, fin: bool, payload: &[u8]) {
        let bytes = encode_frame(opcode, fin, payload.len() as u64, payload);
        let _ = self.stream.write_all(&bytes).await;
    }

    /// Sends a frame without the mask that RFC 6455 requires of every client frame.
    pub async fn send_unmasked(&mut self, opcode: u8, payload: &[u8]) {
        let mut bytes = encode_frame(opcode, true, payload.len() as u64, payload);
        // Clear the mask bit and drop the (zero) key that follows the length.
        bytes[1] &= 0x7F;
        let key_at = bytes.len() - payload.len() - 4;
        bytes.drain(key_at..key_at + 4);
        let _ = self.stream.write_all(&bytes).await;
    }

    /// Reads at most `max` bytes off the socket, frames or not; 0 when the server has closed it.
    pub async fn read_some(&mut self, max: usize) -> usize {
        let mut chunk = vec![0_u8; max];
        match tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0,
            Err(_) => panic!("the server sent nothing within {PATIENCE:?}"),
        }
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(TEXT, true, text.as_bytes()).await;
    }

    /// Sends a text frame for each of `texts`, all in one write, as a client that pipelines requests does.
    pub async fn send_texts(&mut self, texts: &[String]) {
        let bytes: Vec<u8> =
            texts.iter().flat_map(|text| encode_frame(TEXT, true, text.len() as u64, text.as_bytes())).collect();
        let _ = self.stream.write_all(&bytes).await;
    }

    /// The next text frame as JSON, skipping control frames and the server's `ping` messages.
    pub async fn next_json(&mut self) -> serde_json::Value {
        loop {
            let text = self.next_text().await.expect("the connection is open");
            let value: serde_json::Value = serde_json::from_str(&text).expect("the server sends JSON");
            if value["type"] != "ping" {
                return value;
            }
        }
    }

    /// Sends only the header of a frame that claims `len` bytes.
    pub async fn send_header_only(&mut self, opcode: u8, len: u64) {
        let bytes = encode_frame(opcode, true, len, &[]);
        let _ = self.stream.write_all(&bytes).await;
    }

    /// The next frame from the server, or `None` when the connection ended.
    pub async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = decode_frame(&self.buffer) {
                self.buffer.drain(..used);
                return Some(frame);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next text frame, skipping control frames.
    pub async fn next_text(&mut self) -> Option<String> {
        loop {
            let frame = self.next_frame().await?;
            if frame.opcode == TEXT {
                return Some(frame.text());
            }
        }
    }

    /// Reads frames until a close frame, and returns the text frames seen before it and the close code.
    pub async fn until_close(&mut self) -> (Vec<String>, Option<u16>) {
        let mut texts = Vec::new();
        while let Some(frame) = self.next_frame().await {
            match frame.opcode {
                TEXT => texts.push(frame.text()),
                CLOSE => return (texts, frame.close_code()),
                _ => {}
            }
        }
        (texts, None)
    }
}

fn encode_frame(opcode: u8, fin: bool, len: u64, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![(u8::from(fin) << 7) | opcode];
    match len {
        0..=125 => bytes.push(0x80 | len as u8),
        126..=0xFFFF => {
            bytes.push(0x80 | 126);
            bytes.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            bytes.push(0x80 | 127);
            bytes.extend_from_slice(&len.to_be_bytes());
        }
    }
    // A zero mask key is a valid mask and leaves the payload as it is.
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    bytes.extend_from_slice(payload);
    bytes
}

fn decode_frame(buffer: &[u8]) -> Option<(Frame, usize)> {
    if buffer.len() < 2 {
        return None;
    }
    let opcode = buffer[0] & 0x0F;
    let (len, header) = match buffer[1] & 0x7F {
        126 if buffer.len() >= 4 => (u64::from(u16::from_be_bytes([buffer[2], buffer[3]])), 4),
        127 if buffer.len() >= 10 => (u64::from_be_bytes(buffer[2..10].try_into().ok()?), 10),
        126 | 127 => return None,
        n => (u64::from(n), 2),
    };
    let end = header + usize::try_from(len).ok()?;
    if buffer.len() < end {
        return None;
    }
    Some((Frame { opcode, payload: buffer[header..end].to_vec() }, end))
}
