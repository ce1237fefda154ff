//! A webhook endpoint for the process tests: a plain HTTP/1.1 listener on loopback, in a thread, that answers
//! 204 to every POST and keeps the event's `seq` of each, in arrival order; and that listener ([`listen`]), for
//! other receivers (the traces' collector).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// The endpoint: its URL and what it got.
pub struct Endpoint {
    pub url: String,
    seqs: Arc<Mutex<Vec<u64>>>,
    /// How many have arrived, to wait on.
    count: watch::Receiver<usize>,
}

/// Listens on loopback in a thread and hands the body of every POST to `take`, answering each with `answer` (a whole
/// HTTP response); one request per connection or several (keep-alive), each read in full, then answered. Returns
/// the listener's `http://` address.
pub fn listen(answer: &'static str, take: impl Fn(&[u8]) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = format!("http://{}", listener.local_addr().expect("an address"));
    let take = Arc::new(take);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let take = Arc::clone(&take);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("a clone"));
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    take(&body);
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

impl Endpoint {
    pub fn start() -> Endpoint {
        let seqs = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&seqs);
        let (tell, count) = watch::channel(0usize);
        let answer = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
        let address = listen(answer, move |body| {
            let event: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            if let Some(seq) = event["payload"]["seq"].as_u64() {
                let mut seqs = kept.lock().expect("seqs");
                seqs.push(seq);
                tell.send_replace(seqs.len());
            }
        });
        Endpoint { url: format!("{address}/hook"), seqs, count }
    }

    /// The seqs posted so far, in arrival order (repeats included).
    pub fn seqs(&self) -> Vec<u64> {
        self.seqs.lock().expect("seqs").clone()
    }

    /// Waits until every seq of `1..=last` has arrived (re-checked on every arrival), within `patience`.
    pub async fn until_all(&self, last: u64, patience: Duration) {
        let all = || {
            let mut seen = self.seqs();
            seen.sort_unstable();
            seen.dedup();
            seen == (1..=last).collect::<Vec<_>>()
        };
        let mut count = self.count.clone();
        let waited = tokio::time::timeout(patience, async {
            while !all() {
                if count.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(waited.is_ok() && all(), "waited in vain for seqs 1 to {last}: {:?}", self.seqs());
    }
}
