//! A client socket whose reader must keep up: every byte the server sends, on HTTP and WebSocket alike, is
//! written at no less than a minimum rate, or the connection ends and its memory is freed.
//!
//! A plain write timeout is not enough: a client that reads a few bytes now and then resets it for ever while a
//! large reply, or a replay page, stays in memory. So each socket holds a credit of time, at most
//! `limits.write_timeout_ms`: it is spent while the socket makes the server wait, every byte the client takes
//! earns `1 / min_rate` seconds back, and time in which the server does not wait earns it back second for second.
//! A client that stops reading is cut off after the timeout; one that reads at a tenth of the minimum rate, a
//! little later; one that keeps up never runs out, and neither does one that stalled once and then went quiet.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How a [`Paced`] socket's writes are held to account.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// The longest a write may wait on a client that takes nothing.
    pub timeout: Duration,
    /// Bytes per second the client must take while the server waits on it.
    pub min_rate: u64,
}

impl Pace {
    /// The pace the settings ask of every client socket.
    pub fn of(config: &crate::config::Config) -> Pace {
        Pace { timeout: Duration::from_millis(config.limits.write_timeout_ms), min_rate: config.limits.min_write_rate }
    }
}

/// A socket that can be told to throw away what it has not sent yet, when it is closed.
pub trait Discard {
    /// From now on, closing resets the connection instead of delivering what is queued.
    fn discard_unsent(&self);
}

impl Discard for tokio::net::TcpStream {
    fn discard_unsent(&self) {
        // Zero linger: `close` sends RST at once and frees the kernel's queue without blocking. Without it the
        // kernel would go on trickling megabytes to the reader we just cut off, on memory it holds for us.
        let _ = self.set_zero_linger();
    }
}

impl Discard for tokio::net::tcp::OwnedWriteHalf {
    fn discard_unsent(&self) {
        self.as_ref().discard_unsent();
    }
}

/// A socket whose writes fail with `TimedOut` when its reader falls behind [`Pace`].
#[derive(Debug)]
pub struct Paced<S> {
    inner: S,
    pace: Pace,
    /// The time the client may still make the server wait, as of `settled`.
    credit: Duration,
    /// When `credit` was last worked out.
    settled: Instant,
    /// While the server waits: the moment the credit runs out. Made at the first wait and kept (a connection that
    /// never makes the server wait, the common case, pays only for the `None`).
    deadline: Option<Pin<Box<Sleep>>>,
    /// Whether the server is waiting now, so that `deadline` is armed.
    waiting: bool,
}

impl<S: Discard> Paced<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, pace: Pace) -> Self {
        Paced { inner, pace, credit: pace.timeout, settled: Instant::now(), deadline: None, waiting: false }
    }

    /// Credits `written` bytes taken by the client, and ends the wait if there was one.
    fn progress(&mut self, written: usize) {
        let now = Instant::now();
        let rate = self.pace.min_rate.max(1);
        let earned = Duration::from_secs_f64(written as f64 / rate as f64);
        let left = match (&self.deadline, self.waiting) {
            (Some(deadline), true) => deadline.deadline().saturating_duration_since(now),
            _ => self.credit + now.saturating_duration_since(self.settled),
        };
        self.credit = (left + earned).min(self.pace.timeout);
        self.settled = now;
        self.waiting = false;
    }

    /// Accounts for one write to the socket: bytes taken earn credit, a wait spends it.
    fn account(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(written)) => {
                self.progress(written);
                Poll::Ready(Ok(written))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                ready!(self.waiting(cx))?;
                Poll::Pending
            }
        }
    }

    /// The client made the server wait: spends the credit, or fails the write when it has run out.
    fn waiting(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.waiting {
            // Time in which the server did not wait on this socket earns the credit back.
            let now = Instant::now();
            let credit = (self.credit + now.saturating_duration_since(self.settled)).min(self.pace.timeout);
            let until = now + credit;
            match self.deadline.as_mut() {
                Some(deadline) => deadline.as_mut().reset(until),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(until))),
            }
            self.waiting = true;
        }
        let Some(deadline) = self.deadline.as_mut() else { return Poll::Pending };
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.inner.discard_unsent();
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client did not read fast enough")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Discard + Unpin> AsyncWrite for Paced<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        self.account(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        self.account(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => {
                ready!(self.waiting(cx))?;
                Poll::Pending
            }
            done => done,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Pending => {
                ready!(self.waiting(cx))?;
                Poll::Pending
            }
            done => done,
        }
    }
}

impl Paced<tokio::net::TcpStream> {
    /// The socket's two halves, its writes still paced: each half is used by itself, with no lock between them
    /// (tokio's generic `split` takes one for every read and every write).
    pub fn into_split(self) -> (tokio::net::tcp::OwnedReadHalf, Paced<tokio::net::tcp::OwnedWriteHalf>) {
        let Paced { inner, pace, credit, settled, deadline, waiting } = self;
        let (read, write) = inner.into_split();
        (read, Paced { inner: write, pace, credit, settled, deadline, waiting })
    }
}

/// The TLS listener's first step: the TCP socket under TLS is paced, so encrypted bytes count as they leave.
impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for Pace {
    type Stream = Paced<tokio::net::TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let _ = stream.set_nodelay(true);
        std::future::ready(Ok((Paced::new(stream, *self), service)))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Paced<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    impl Discard for tokio::io::DuplexStream {
        fn discard_unsent(&self) {}
    }

    const PACE: Pace = Pace { timeout: Duration::from_secs(10), min_rate: 64 * 1024 };

    /// Writes `total` bytes into a pipe whose other end takes `step` bytes every `every` (in paused time, so the
    /// test takes no real time); returns how long the writer went on, and whether it was cut off.
    async fn write_against_reader(total: usize, step: usize, every: Duration) -> (Duration, bool) {
        let (client, server) = tokio::io::duplex(1024);
        let mut paced = Paced::new(server, PACE);
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut buf = vec![0u8; step];
            loop {
                tokio::time::sleep(every).await;
                match tokio::io::AsyncReadExt::read(&mut client, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        });
        let started = Instant::now();
        let result = paced.write_all(&vec![7u8; total]).await;
        let took = started.elapsed();
        drop(paced);
        let _ = reader.await;
        (took, result.is_err_and(|e| e.kind() == io::ErrorKind::TimedOut))
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_keeps_up_is_never_cut_off() {
        // 1 KiB every 10 ms is 100 KiB/s, above the minimum: 4 MiB take about 40 s, four times the timeout.
        let (took, cut) = write_against_reader(4 << 20, 1024, Duration::from_millis(10)).await;
        assert!(!cut, "cut off after {took:?}");
        assert!(took > Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_is_cut_off_after_the_timeout() {
        let (took, cut) = write_against_reader(1 << 20, 1024, Duration::from_secs(3600)).await;
        assert!(cut);
        assert!(took >= PACE.timeout && took < PACE.timeout + Duration::from_secs(1), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_long_ago_does_not_count_against_the_next_write() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut paced = Paced::new(server, PACE);
        let writing = tokio::spawn(async move {
            paced.write_all(&[1u8; 4096]).await.expect("first write");
            // Idle for a minute: nothing is owed.
            tokio::time::sleep(Duration::from_secs(60)).await;
            paced.write_all(&[2u8; 4096]).await.map(|()| paced)
        });
        let mut buf = vec![0u8; 4096];
        // The first write stalls 9 s of its 10 s credit, then drains.
        tokio::time::sleep(Duration::from_secs(9)).await;
        tokio::io::AsyncReadExt::read_exact(&mut client, &mut buf).await.expect("first read");
        // The second stalls 9 s too, which a credit still spent from the first would not survive.
        tokio::time::sleep(Duration::from_secs(69)).await;
        tokio::io::AsyncReadExt::read_exact(&mut client, &mut buf).await.expect("second read");
        assert!(writing.await.expect("no panic").is_ok(), "the second write was cut off");
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_reader_is_cut_off_soon_after() {
        // 1 KiB every 125 ms is 8 KiB/s, an eighth of the minimum: each second costs 1 s and earns 1/8 s back,
        // so the credit lasts about 10 / (7/8) = 11.4 s, where a plain timeout would never fire.
        let (took, cut) = write_against_reader(1 << 20, 1024, Duration::from_millis(125)).await;
        assert!(cut, "never cut off; wrote for {took:?}");
        assert!(took > PACE.timeout && took < Duration::from_secs(13), "{took:?}");
    }
}
