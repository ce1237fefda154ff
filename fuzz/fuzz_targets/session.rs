//! The session state machine fed arbitrary sequences of inbound messages: it never panics, everything it writes
//! is a server message the protocol decodes, it closes only with the spec's codes, and when it ends it has given
//! back its connection place and its subscriptions.
//!
//! The input is lines. A line is a text message, except these, which stand for what the connection's reader
//! hands over besides text: `!ping`, `!pong`, `!binary`, `!toobig`, `!badutf8`, `!close`. In text, `$alice`,
//! `$bob` and `$admin` stand for valid tokens of those users, so sequences get past `auth`.

#![no_main]

use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;
use tidings_protocol::{decode_server, CloseCode};
use tidings_server::connection::{self, Inbound, Outbound};
use tidings_server::session::Session;
use tidings_server::shared::Shared;

/// What the session wrote, checked as it is written.
#[derive(Clone, Debug, Default)]
struct Recorder {
    closed: Arc<Mutex<Option<u16>>>,
}

impl Outbound for Recorder {
    async fn text(&mut self, text: &str) -> std::io::Result<()> {
        assert!(self.closed.lock().expect("lock").is_none(), "a message after the close frame: {text}");
        if let Err(error) = decode_server(text) {
            panic!("the session wrote a message the protocol refuses ({error}): {text}");
        }
        Ok(())
    }

    async fn text_in_parts(&mut self, parts: [&str; 3]) -> std::io::Result<()> {
        self.text(&parts.concat()).await
    }

    async fn pong(&mut self, _payload: &[u8]) -> std::io::Result<()> {
        Ok(())
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    async fn close(&mut self, code: u16, _reason: &str) -> std::io::Result<()> {
        // 1002 is RFC 6455's, sent by the connection layer for a frame that breaks it, without a `disconnect`.
        let known = CloseCode::ALL.iter().any(|c| c.code() == code) || code == connection::PROTOCOL_ERROR;
        assert!(known, "closed with {code}, which is not one of the spec's close codes");
        let mut closed = self.closed.lock().expect("lock");
        assert!(closed.is_none(), "closed twice");
        *closed = Some(code);
        Ok(())
    }
}

/// The inbound messages an input stands for.
fn messages(data: &[u8], tokens: &[(&str, String)]) -> Vec<Inbound> {
    data.split(|b| *b == b'\n')
        .take(64)
        .map(|line| match line {
            b"!ping" => Inbound::Ping(b"p".to_vec()),
            b"!pong" => Inbound::Pong,
            b"!binary" => Inbound::Binary,
            b"!toobig" => Inbound::TooBig,
            b"!badutf8" => Inbound::InvalidUtf8,
            b"!protocolerror" => Inbound::ProtocolError,
            b"!close" => Inbound::Close(Some(1000)),
            _ => match std::str::from_utf8(line) {
                Ok(text) => {
                    let mut text = text.to_owned();
                    for (name, token) in tokens {
                        text = text.replace(name, token);
                    }
                    Inbound::Text(text)
                }
                Err(_) => Inbound::InvalidUtf8,
            },
        })
        .collect()
}

fn tokens() -> &'static [(&'static str, String)] {
    static TOKENS: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();
    TOKENS.get_or_init(|| {
        vec![
            ("$admin", tidings_fuzz::token("root", &["admin"])),
            ("$alice", tidings_fuzz::token("alice", &[])),
            ("$bob", tidings_fuzz::token("bob", &[])),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let shared: &Arc<Shared> = tidings_fuzz::shared();
    let inbound = messages(data, tokens());
    let recorder = Recorder::default();
    tidings_fuzz::runtime().block_on(async {
        let (sender, receiver) = tokio::sync::mpsc::channel(inbound.len() + 1);
        for message in inbound {
            sender.try_send(message).expect("room for every message");
        }
        // The connection ends after the last message, as when the client's socket closes.
        drop(sender);
        let permit = shared.connections.open(usize::MAX).expect("a connection place");
        let session = Session::new(Arc::clone(shared), recorder.clone(), permit);
        tokio::time::timeout(std::time::Duration::from_secs(10), session.run(receiver))
            .await
            .expect("a session ends when its connection does");
    });
    assert_eq!(shared.connections.total(), 0, "the session kept its connection place");
    assert_eq!(shared.hub.subscriptions(), 0, "the session left subscriptions behind");
});
