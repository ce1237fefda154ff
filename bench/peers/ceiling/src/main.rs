//! The benchmark's ceilings: how fast a WebSocket server can be on this machine, with no application in it.
//!
//! `ceiling echo` answers `connect`, `auth` and `ping` by rewriting the request's type in its text (no JSON parsing)
//! on fastwebsockets, the fastest Rust framing: the ceiling for `rpc`. `ceiling broadcast` answers `connect`,
//! `auth`, `subscribe` and `create` the same way and writes each create's event (as large as Tidings'), framed
//! once, to every subscriber, coalescing what waits for a connection into one write: the ceiling for `fanout`.
//! `ceiling storage` answers like `echo` and stores each `create` as Tidings does, durably, with nothing else
//! (storage.rs): the ceiling for `create`. None verifies tokens. Each listens on 127.0.0.1:$PORT and prints `listening on ws://127.0.0.1:PORT/ws`;
//! `storage` keeps its database in $DATA_DIR.

mod storage;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{bail, Context};
use base64::Engine;
use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn main() -> anyhow::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let port: u16 = std::env::var("PORT").unwrap_or_else(|_| "8090".to_owned()).parse().context("PORT")?;
    // One core is what each system under test gets: one thread.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on ws://127.0.0.1:{}/ws", listener.local_addr()?.port());
        let hub = Arc::new(Hub::default());
        let creates = match mode.as_str() {
            "storage" => Some(storage::open(std::path::Path::new(&std::env::var("DATA_DIR").context("DATA_DIR")?))?),
            _ => None,
        };
        loop {
            let (mut stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let hub = Arc::clone(&hub);
            let mode = mode.clone();
            let creates = creates.clone();
            tokio::spawn(async move {
                let result = match (mode.as_str(), creates) {
                    ("echo", _) => echo(stream).await,
                    ("broadcast", _) => broadcast(stream, hub).await,
                    ("storage", Some(creates)) => match handshake(&mut stream).await {
                        Ok(()) => storage::serve(stream, creates).await,
                        Err(error) => Err(error),
                    },
                    (other, _) => Err(anyhow::anyhow!("unknown mode {other:?}: echo, broadcast or storage")),
                };
                if let Err(error) = result {
                    if error.to_string().contains("unknown mode") {
                        eprintln!("{error}");
                        std::process::exit(2);
                    }
                }
            });
        }
    })
}

/// Reads the HTTP upgrade request and answers 101 (RFC 6455, section 4.2).
async fn handshake(stream: &mut TcpStream) -> anyhow::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || request.len() > 16 * 1024 {
            bail!("no upgrade request");
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let key = text
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
        })
        .context("no Sec-WebSocket-Key")?;
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha1.finalize());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await?;
    Ok(())
}

/// The request's text with its type replaced: `ping` becomes `pong`, `auth` becomes `auth_success`; others stay.
fn answer(request: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(request);
    if text.contains(r#""type":"ping""#) {
        return text.replacen(r#""type":"ping""#, r#""type":"pong""#, 1).into_bytes();
    }
    if text.contains(r#""type":"auth""#) {
        return text.replacen(r#""type":"auth""#, r#""type":"auth_success""#, 1).into_bytes();
    }
    request.to_vec()
}

/// The echo ceiling: one frame in, one frame out, on fastwebsockets.
async fn echo(mut stream: TcpStream) -> anyhow::Result<()> {
    handshake(&mut stream).await?;
    answer_each(stream, |request| async move { Ok(answer(&request)) }).await
}

/// Answers each text frame of a connection, after the handshake, with the frame `reply` makes of it.
async fn answer_each<F, A>(stream: TcpStream, mut reply: F) -> anyhow::Result<()>
where
    F: FnMut(Vec<u8>) -> A,
    A: std::future::Future<Output = anyhow::Result<Vec<u8>>>,
{
    let mut ws = WebSocket::after_handshake(stream, Role::Server);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Text => {
                let text = reply(frame.payload.to_vec()).await?;
                ws.write_frame(Frame::text(Payload::Owned(text))).await?;
            }
            OpCode::Close => return Ok(()),
            _ => {}
        }
    }
}

/// The broadcast ceiling's subscribers: each one's queue of frames, already encoded.
#[derive(Default)]
struct Hub {
    subscribers: Mutex<Vec<mpsc::Sender<Arc<[u8]>>>>,
    seq: AtomicU64,
}

/// A frame's bytes as a server sends them (unmasked), encoded once.
fn frame(opcode: u8, payload: &[u8]) -> Arc<[u8]> {
    let mut bytes = Vec::with_capacity(payload.len() + 10);
    bytes.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => bytes.push(n as u8),
        n if n <= 0xFFFF => {
            bytes.push(126);
            bytes.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            bytes.push(127);
            bytes.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    bytes.extend_from_slice(payload);
    bytes.into()
}

/// The event of a create, with every field a Tidings event carries (docs/protocol.md, 6.11) and values of the same
/// length, so that a subscriber reads as many bytes from the ceiling as from Tidings: the load generator's cost
/// grows with an event's size, and with a smaller event the ratio would measure the event, not the server. The
/// fields are found in the create's text, not parsed, as everything else here.
fn event_of(create: &str, hub: &Hub) -> Option<String> {
    let after = |key: &str| create.find(key).map(|at| &create[at + key.len()..]);
    let kind = after(r#""resourceType":""#)?.split('"').next()?;
    let data = after(r#""data":"#)?;
    // The create's text ends with the data object, then its payload's brace and its envelope's.
    let data = data.get(..data.len().checked_sub(2)?)?;
    let n = hub.seq.fetch_add(1, Ordering::Relaxed) + 1;
    // `pulse` is the benchmark's ephemeral type (bench/tidings.toml), whose events have no seq.
    let seq = if kind == "pulse" { String::new() } else { format!(r#""seq":{n},"#) };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    // The ids of the benchmark's users (`bench-N`) and of resources (a prefix and a 26-character ULID).
    Some(format!(
        r#"{{"type":"event","timestamp":{now},"payload":{{"eventType":"{kind}_created","data":{data},"topic":"{kind}","subscriptionId":"{kind}",{seq}"resourceType":"{kind}","id":"ORD-{n:026}","version":1,"ownerId":"bench-1000","actor":{{"kind":"user","id":"bench-1000"}},"occurredAt":{now}}}}}"#
    ))
}

/// The broadcast ceiling: a reader that parses client frames by hand and a writer that coalesces what waits.
async fn broadcast(mut stream: TcpStream, hub: Arc<Hub>) -> anyhow::Result<()> {
    handshake(&mut stream).await?;
    let (reader, writer) = stream.into_split();
    let (outbox, inbox) = mpsc::channel::<Arc<[u8]>>(4096);
    tokio::spawn(write_all(writer, inbox));
    let mut reader = FrameReader { reader, buffer: Vec::new() };
    while let Some((opcode, payload)) = reader.next().await? {
        match opcode {
            1 => {
                let text = String::from_utf8_lossy(&payload);
                if text.contains(r#""type":"subscribe""#) {
                    hub.subscribers.lock().unwrap_or_else(PoisonError::into_inner).push(outbox.clone());
                }
                if outbox.send(frame(1, &answer(&payload))).await.is_err() {
                    return Ok(());
                }
                if text.contains(r#""type":"create""#) {
                    if let Some(event) = event_of(&text, &hub) {
                        let encoded = frame(1, event.as_bytes());
                        // Full or gone: the subscriber leaves; no one waits for a slow one.
                        let mut subscribers = hub.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
                        subscribers.retain(|s| s.try_send(Arc::clone(&encoded)).is_ok());
                    }
                }
            }
            9 => {
                let _ = outbox.send(frame(10, &payload)).await;
            }
            8 => return Ok(()),
            _ => {}
        }
    }
    Ok(())
}

/// Writes what waits for a connection in one write per batch.
async fn write_all(mut writer: OwnedWriteHalf, mut inbox: mpsc::Receiver<Arc<[u8]>>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    while let Some(first) = inbox.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 64 * 1024 {
            match inbox.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if writer.write_all(&batch).await.is_err() {
            return;
        }
    }
}

/// Client frames (masked, RFC 6455 section 5.2), read by hand; fragments are not used by the benchmark.
struct FrameReader {
    reader: OwnedReadHalf,
    buffer: Vec<u8>,
}

impl FrameReader {
    async fn fill(&mut self, n: usize) -> anyhow::Result<bool> {
        let mut chunk = [0_u8; 16 * 1024];
        while self.buffer.len() < n {
            let read = self.reader.read(&mut chunk).await?;
            if read == 0 {
                return Ok(false);
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
        Ok(true)
    }

    async fn next(&mut self) -> anyhow::Result<Option<(u8, Vec<u8>)>> {
        if !self.fill(2).await? {
            return Ok(None);
        }
        let opcode = self.buffer[0] & 0x0F;
        let masked = self.buffer[1] & 0x80 != 0;
        let (length, mut offset) = match self.buffer[1] & 0x7F {
            126 => {
                if !self.fill(4).await? {
                    return Ok(None);
                }
                (u16::from_be_bytes([self.buffer[2], self.buffer[3]]) as usize, 4)
            }
            127 => {
                if !self.fill(10).await? {
                    return Ok(None);
                }
                let mut bytes = [0_u8; 8];
                bytes.copy_from_slice(&self.buffer[2..10]);
                (u64::from_be_bytes(bytes) as usize, 10)
            }
            n => (n as usize, 2),
        };
        if length > 1 << 20 {
            bail!("frame too large");
        }
        let mut mask = [0_u8; 4];
        if masked {
            if !self.fill(offset + 4).await? {
                return Ok(None);
            }
            mask.copy_from_slice(&self.buffer[offset..offset + 4]);
            offset += 4;
        }
        if !self.fill(offset + length).await? {
            return Ok(None);
        }
        let mut payload: Vec<u8> = self.buffer[offset..offset + length].to_vec();
        if masked {
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= mask[i % 4];
            }
        }
        self.buffer.drain(..offset + length);
        Ok(Some((opcode, payload)))
    }
}
