//! A Server-Sent Events client for tests, as `curl -N` would read a feed: one GET, then the stream's events
//! (`id`, `event`, `data`) as they come, read by a thread of its own.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;

use serde_json::Value;
use tokio::sync::mpsc;

use super::PATIENCE;

/// One event of the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    /// `id:`, the event's seq.
    pub id: Option<String>,
    /// `event:`; `message` when the stream names none.
    pub event: String,
    /// `data:`.
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("JSON data")
    }
}

/// An open feed: its status, and its events as they arrive.
pub struct Feed {
    pub status: u16,
    /// The body of a refusal.
    pub refusal: String,
    events: mpsc::UnboundedReceiver<SseEvent>,
}

impl Feed {
    /// Opens `GET path` with `headers` on the server at `addr`.
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Feed {
        let url = format!("http://{addr}{path}");
        let headers: Vec<(String, String)> = headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        let (opened, status) = tokio::sync::oneshot::channel();
        let (tell, events) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
            let mut request = agent.get(&url);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let mut response = match request.call() {
                Ok(response) => response,
                Err(error) => {
                    let _ = opened.send((0, error.to_string()));
                    return;
                }
            };
            let code = response.status().as_u16();
            if code != 200 {
                let body = response.body_mut().read_to_string().unwrap_or_default();
                let _ = opened.send((code, body));
                return;
            }
            let _ = opened.send((code, String::new()));
            let mut current = SseEvent { id: None, event: "message".to_owned(), data: String::new() };
            for line in BufReader::new(response.into_body().into_reader()).lines() {
                let Ok(line) = line else { return };
                if line.is_empty() {
                    if !current.data.is_empty() && tell.send(current.clone()).is_err() {
                        return;
                    }
                    current = SseEvent { id: None, event: "message".to_owned(), data: String::new() };
                } else if let Some(id) = line.strip_prefix("id:") {
                    current.id = Some(id.trim().to_owned());
                } else if let Some(event) = line.strip_prefix("event:") {
                    current.event = event.trim().to_owned();
                } else if let Some(data) = line.strip_prefix("data:") {
                    current.data.push_str(data.strip_prefix(' ').unwrap_or(data));
                }
            }
        });
        let (status, refusal) = status.await.expect("the feed answers");
        Feed { status, refusal, events }
    }

    /// The next event, within `PATIENCE`.
    pub async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(PATIENCE, self.events.recv()).await.expect("an event in time").expect("the feed is open")
    }
}
