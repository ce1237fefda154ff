//! One load-generator connection: a fastwebsockets client from a chosen source address, with the protocol's
//! handshake and just enough parsing to match replies and read events.

use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload};
use http_body_util::Empty;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use memchr::memmem::Finder;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpSocket;

/// Where a load generator connects: the server's address and the request path.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Target {
    /// Parses `ws://HOST:PORT/PATH`.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = url.strip_prefix("ws://").context("the URL must start with ws://")?;
        let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let addr = host.parse().with_context(|| format!("{host} is not an IP address and port"))?;
        Ok(Target { addr, host: host.to_owned(), path })
    }
}

// The generator writes its few messages by hand rather than through tidings-protocol, as the one exception to
// ARCHITECTURE.md's rule: it is a load generator for any protocol v1 server (the peers included) and must cost as
// little per message as it can. bench/mod.rs tests that the protocol crate decodes every message it writes.

/// The `connect` every connection opens with.
pub const CONNECT: &str = r#"{"type":"connect","timestamp":0,"requestId":"c","payload":{"protocolVersion":"1.0"}}"#;

/// The answer to a server's `ping`.
pub const PONG: &str = r#"{"type":"pong","timestamp":0,"payload":{}}"#;

/// The `auth` that signs a connection in with `token`.
pub fn auth_message(token: &str) -> String {
    format!(r#"{{"type":"auth","timestamp":0,"requestId":"a","payload":{{"token":"{token}"}}}}"#)
}

/// What the generator reads of a server message.
#[derive(Debug, Deserialize)]
pub struct Reply<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(rename = "requestId", default)]
    pub request_id: Option<&'a str>,
    #[serde(borrow, default)]
    pub payload: Option<&'a RawValue>,
}

/// An open, authenticated connection.
pub struct Conn {
    ws: FragmentCollector<TokioIo<Upgraded>>,
}

/// Spawns hyper's connection task on tokio.
struct Spawner;

impl<F> hyper::rt::Executor<F> for Spawner
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future);
    }
}

impl Conn {
    /// Connects from `source` (an address in 127.0.0.0/8, so that many connections do not exhaust one address's
    /// ports), upgrades, and signs in with `token`: `connect` and `auth` go out together, without waiting for
    /// `connect`'s reply, as the TypeScript SDK sends them.
    pub async fn open(target: &Target, source: IpAddr, token: &str) -> anyhow::Result<Conn> {
        let mut conn = Conn::upgrade(target, source).await?;
        conn.send(CONNECT).await.context("connect")?;
        let reply = conn.call("a", &auth_message(token)).await.context("auth")?;
        if !reply.contains(r#""auth_success""#) {
            bail!("auth failed: {reply}");
        }
        Ok(conn)
    }

    /// Connects from `source` and upgrades to a WebSocket, saying nothing yet.
    pub async fn upgrade(target: &Target, source: IpAddr) -> anyhow::Result<Conn> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0)).with_context(|| format!("cannot bind {source}"))?;
        let stream = socket.connect(target.addr).await.with_context(|| format!("cannot connect to {}", target.addr))?;
        stream.set_nodelay(true)?;
        let request = hyper::Request::get(&target.path)
            .header("Host", &target.host)
            .header("Upgrade", "websocket")
            .header("Connection", "upgrade")
            .header("Sec-WebSocket-Key", fastwebsockets::handshake::generate_key())
            .header("Sec-WebSocket-Version", "13")
            .body(Empty::<Bytes>::new())?;
        let (ws, _) = fastwebsockets::handshake::client(&Spawner, request, stream).await.context("upgrade")?;
        Ok(Conn { ws: FragmentCollector::new(ws) })
    }

    /// Sends one text frame.
    pub async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        let frame = Frame::text(Payload::Borrowed(text.as_bytes()));
        self.ws.write_frame(frame).await.context("write")
    }

    /// The next text message; answers the server's protocol pings on the way, so held connections stay open.
    pub async fn recv(&mut self) -> anyhow::Result<String> {
        self.recv_with(|text| String::from_utf8(text.to_vec()).context("utf-8")).await?
    }

    /// The next text message, handed to `read` where it lies in the connection's buffer: a load generator that
    /// reads a million events a second cannot afford a copy of each (the frame reader has checked its UTF-8).
    /// Answers the server's protocol pings on the way, as [`Conn::recv`] does.
    pub async fn recv_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> anyhow::Result<R> {
        loop {
            let frame = self.ws.read_frame().await.context("read")?;
            match frame.opcode {
                OpCode::Text => {
                    let text: &[u8] = &frame.payload;
                    static PING: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""ping""#));
                    let ping = PING.find(text).is_some()
                        && serde_json::from_slice::<Reply<'_>>(text).is_ok_and(|r| r.kind == "ping");
                    if !ping {
                        return Ok(read(text));
                    }
                }
                OpCode::Close => bail!("the server closed the connection"),
                _ => continue,
            }
            drop(frame);
            self.send(PONG).await?;
        }
    }

    /// Sends a request and waits for the message that carries its requestId, skipping pushes.
    pub async fn call(&mut self, request_id: &str, text: &str) -> anyhow::Result<String> {
        self.send(text).await?;
        loop {
            let reply = self.recv().await?;
            let parsed: Reply<'_> = serde_json::from_str(&reply).context("a reply that is not protocol JSON")?;
            if parsed.request_id == Some(request_id) {
                if parsed.kind == "error" {
                    bail!("error reply: {reply}");
                }
                return Ok(reply);
            }
        }
    }

    /// Like [`Conn::recv`], giving up after `wait`. fastwebsockets' reads are not cancel-safe: after a `None`, a
    /// frame may have been half read, so the connection must not be read again (every caller drops it).
    pub async fn recv_within(&mut self, wait: Duration) -> anyhow::Result<Option<String>> {
        match tokio::time::timeout(wait, self.recv()).await {
            Ok(message) => message.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.ws.write_frame(Frame::close(1000, b"")).await;
    }
}
