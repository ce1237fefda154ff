//! A connection's mailbox: the bounded queue of pushes between the fan-out and the connection's session.
//!
//! It holds no memory for pushes until one comes, and gives it back once the session has taken them all: most
//! connections are idle most of the time. (tokio's bounded channel allocated a block of 32 slots and a
//! cache-padded header with every connection, pushed to or not: a fifth of an idle connection's memory.) One
//! session receives; the fan-out, the relay and presence offer, never waiting: a full mailbox flags its connection
//! as a slow consumer instead.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use tokio_util::sync::CancellationToken;

use super::wakes::Wakes;
use super::Delivery;

/// A queue that has held more than this many pushes is given back when it empties; a smaller one is kept (at most
/// 1.5 KiB on each side, the offering side's queue and the pushes the session has taken: a push is a pointer and a
/// tag), since a connection that gets a push now and then, or a burst of a busy topic's events every turn, would
/// otherwise allocate anew for each: growing a queue from nothing to a burst of fifty takes five allocations.
const KEPT: usize = 64;

/// What the offering side and the receiving side share.
///
/// An offer reads and writes the first four fields, and a fan-out offers to a thousand mailboxes an event, of
/// thousands that stay in no cache between events: they are laid out first, in the 64 bytes of one cache line
/// (`a_mailbox_offers_within_one_cache_line`). Laid out by the compiler, the flag an offer reads first lay in the
/// second line of two.
#[derive(Debug)]
#[repr(C, align(64))]
pub(super) struct Shared {
    queue: Mutex<VecDeque<Delivery>>,
    /// Pushes offered and not yet handed out by [`Deliveries`]: those in the queue and those it has taken. The
    /// bound is on these, so that taking the queue whole does not make room for as many again.
    held: AtomicUsize,
    capacity: usize,
    /// The receiving session is gone, or the connection was found too slow: offers are refused.
    flagged: AtomicBool,
    /// The session's task, woken when a push arrives or the last offering side goes.
    waker: AtomicWaker,
    /// How many [`Mailbox`] handles exist: when none is left, nothing more can come.
    senders: AtomicUsize,
}

impl Shared {
    /// Wakes the session, if it waits.
    pub(super) fn wake(&self) {
        self.waker.wake();
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Delivery>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The offering side of a connection's mailbox: cloned into the hub's index, presence and the relay.
#[derive(Debug)]
pub struct Mailbox {
    /// Which connection it belongs to.
    pub connection: u64,
    shared: Arc<Shared>,
    /// Tells the session that it is too slow (it waits on this).
    slow: CancellationToken,
}

/// The receiving side, which the session drains.
#[derive(Debug)]
pub struct Deliveries {
    shared: Arc<Shared>,
    /// The pushes taken from the queue at once, in one lock, and handed out one by one.
    taken: VecDeque<Delivery>,
}

impl Mailbox {
    /// A mailbox of `capacity` pushes, the deliveries its session drains, and the token cancelled when it overflows.
    pub fn new(capacity: usize) -> (Mailbox, Deliveries, CancellationToken) {
        let slow = CancellationToken::new();
        let (mailbox, deliveries) = Mailbox::cancelling(capacity, slow.clone());
        (mailbox, deliveries, slow)
    }

    /// A mailbox that cancels `slow` when it overflows: a token its session also waits on for other reasons
    /// (`session/mod.rs` waits on one token for a shutdown, a kick and an overflow, and asks which it was).
    pub fn cancelling(capacity: usize, slow: CancellationToken) -> (Mailbox, Deliveries) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            waker: AtomicWaker::new(),
            senders: AtomicUsize::new(1),
            held: AtomicUsize::new(0),
            flagged: AtomicBool::new(false),
        });
        let connection = NEXT.fetch_add(1, Ordering::Relaxed);
        let mailbox = Mailbox { connection, shared: Arc::clone(&shared), slow };
        (mailbox, Deliveries { shared, taken: VecDeque::new() })
    }

    /// Pushes waiting in the mailbox now.
    pub fn depth(&self) -> usize {
        self.shared.held.load(Ordering::Relaxed)
    }

    /// Whether its connection was found too slow (or gone): the fan-out drops it.
    pub(crate) fn is_slow(&self) -> bool {
        self.shared.flagged.load(Ordering::Relaxed)
    }

    fn flag_slow(&self) {
        self.shared.flagged.store(true, Ordering::Relaxed);
        self.slow.cancel();
    }

    /// Hands over a push without waiting; a full mailbox marks its connection slow and refuses. So does a mailbox
    /// whose session is gone, so that the fan-out drops its stale entries.
    pub(crate) fn offer(&self, delivery: Delivery) -> bool {
        self.push(delivery, None)
    }

    /// As [`Mailbox::offer`], but a push into the empty queue leaves its session's wake with `wakes`, to be woken
    /// in turn with the others that a fan-out reached. The hub's fan-out of events offers this way; presence and
    /// notifications, whose pushes reach a few sessions, wake them at once.
    pub(super) fn offer_in_turn(&self, delivery: Delivery, wakes: &Arc<Wakes>) -> bool {
        self.push(delivery, Some(wakes))
    }

    fn push(&self, delivery: Delivery, in_turn: Option<&Arc<Wakes>>) -> bool {
        if self.is_slow() {
            return false;
        }
        let urgent;
        {
            let mut queue = self.shared.queue();
            // Again under the lock: a session that went away since the check above has emptied the queue for good.
            if self.is_slow() {
                return false;
            }
            if self.shared.held.load(Ordering::Relaxed) >= self.shared.capacity {
                drop(queue);
                self.flag_slow();
                return false;
            }
            let held = self.shared.held.fetch_add(1, Ordering::Relaxed) + 1;
            queue.push_back(delivery);
            // A mailbox a quarter full wakes its session at once, whether or not a wake waits in `wakes.rs`: a
            // session put in turn behind the others there must not look slow because of it.
            urgent = held == self.shared.capacity.div_ceil(4);
            // Otherwise only the first push into an empty queue wakes the session: it drains the queue whole before
            // it waits again, so the pushes behind the first are found by the same turn. (A fan-out to a thousand
            // mailboxes woke each session once per event, each wake a write to its task's state.)
            if queue.len() > 1 && !urgent {
                return true;
            }
        }
        match in_turn {
            Some(wakes) if !urgent => wakes.defer(&self.shared),
            _ => self.shared.wake(),
        }
        true
    }
}

impl Clone for Mailbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Mailbox { connection: self.connection, shared: Arc::clone(&self.shared), slow: self.slow.clone() }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        // The last one gone: the session, if it waits, learns that nothing more will come.
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.waker.wake();
        }
    }
}

impl Deliveries {
    /// The next push, waiting for one; `None` once the mailbox is empty and every [`Mailbox`] handle is gone.
    /// Cancel-safe: a push is taken only by the call that returns it.
    pub async fn recv(&mut self) -> Option<Delivery> {
        poll_fn(|cx| {
            if let Some(delivery) = self.try_recv() {
                return Poll::Ready(Some(delivery));
            }
            self.shared.waker.register(cx.waker());
            // Whether anyone can still push, read before looking again: a push made before the last handle went is
            // then seen by the look, and none is left behind when this says the mailbox is done.
            let closed = self.shared.senders.load(Ordering::Acquire) == 0;
            // Again after registering: a push offered in between woke no one.
            if let Some(delivery) = self.try_recv() {
                return Poll::Ready(Some(delivery));
            }
            if closed {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }

    /// A push that waits now, if any. The queue is taken whole, in one lock, and handed out from here; taking the
    /// last gives a large queue's memory back.
    pub fn try_recv(&mut self) -> Option<Delivery> {
        if self.taken.is_empty() {
            let mut queue = self.shared.queue();
            if queue.is_empty() {
                return None;
            }
            // The queue gets this side's empty one in exchange, with its memory, if it is small enough to keep.
            if self.taken.capacity() > KEPT {
                self.taken = VecDeque::new();
            }
            std::mem::swap(&mut *queue, &mut self.taken);
        }
        let delivery = self.taken.pop_front();
        if delivery.is_some() {
            self.shared.held.fetch_sub(1, Ordering::Relaxed);
        }
        if self.taken.is_empty() && self.taken.capacity() > KEPT {
            self.taken = VecDeque::new();
        }
        delivery
    }
}

impl Drop for Deliveries {
    fn drop(&mut self) {
        // Under the lock, which `offer` checks the flag under too: no push lands after the queue is given back.
        let mut queue = self.shared.queue();
        self.shared.flagged.store(true, Ordering::Relaxed);
        *queue = VecDeque::new();
        self.shared.held.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Delivery, Mailbox, Shared, KEPT};
    use crate::hub::LostPush;

    fn push(n: usize) -> Delivery {
        Delivery::Lost(LostPush { topic: Arc::from(format!("t{n}")) })
    }

    fn topic(delivery: Option<Delivery>) -> Option<String> {
        match delivery {
            Some(Delivery::Lost(lost)) => Some(lost.topic.to_string()),
            _ => None,
        }
    }

    /// The fields an offer touches lie in one cache line, whatever the allocator gives.
    #[test]
    fn a_mailbox_offers_within_one_cache_line() {
        assert_eq!(std::mem::align_of::<Shared>(), 64);
        assert!(std::mem::offset_of!(Shared, flagged) < 64, "{}", std::mem::offset_of!(Shared, flagged));
    }

    /// Pushes come out in order; past the capacity the connection is flagged slow and its token cancelled; a
    /// drained mailbox holds no memory for pushes; and the deliveries end once no one can push any more.
    #[tokio::test]
    async fn a_mailbox_is_bounded_ordered_and_empty_handed_when_drained() {
        let (mailbox, mut deliveries, slow) = Mailbox::new(100);
        assert_eq!(deliveries.shared.queue().capacity(), 0, "nothing is allocated before a push");
        let waiting = tokio::spawn(async move {
            let first = topic(deliveries.recv().await);
            (first, deliveries)
        });
        tokio::task::yield_now().await;
        assert!(mailbox.offer(push(0)), "an empty mailbox takes a push");
        let (first, mut deliveries) = waiting.await.expect("the receiver ran");
        assert_eq!(first.as_deref(), Some("t0"), "a waiting receiver is woken");
        let other = mailbox.clone();
        for n in 1..=100 {
            assert!(other.offer(push(n)), "push {n} fits");
        }
        assert_eq!(mailbox.depth(), 100);
        assert!(!mailbox.offer(push(101)), "the 101st does not");
        assert!(mailbox.is_slow() && slow.is_cancelled(), "and the connection is flagged slow");
        assert!(!other.offer(push(102)), "every handle refuses from then on");
        let drained: Vec<_> = std::iter::from_fn(|| topic(deliveries.try_recv())).collect();
        assert_eq!(drained, (1..=100).map(|n| format!("t{n}")).collect::<Vec<_>>(), "in the order offered");
        assert!(deliveries.shared.queue().capacity() <= KEPT, "a drained mailbox gives its memory back");
        drop((mailbox, other));
        assert_eq!(topic(deliveries.recv().await), None, "no handle left: nothing more will come");
    }

    /// The session takes the queue whole; the pushes it took and has not handed out still count against the
    /// bound, and the ones offered meanwhile come after them, in order.
    #[test]
    fn pushes_taken_but_not_handed_out_count_against_the_bound() {
        let (mailbox, mut deliveries, slow) = Mailbox::new(3);
        assert!((1..=3).all(|n| mailbox.offer(push(n))));
        assert_eq!(topic(deliveries.try_recv()).as_deref(), Some("t1"), "the queue is taken, the first handed out");
        assert_eq!(mailbox.depth(), 2);
        assert!(mailbox.offer(push(4)), "one place was freed");
        assert!(!mailbox.offer(push(5)), "the two taken and the one queued fill it");
        assert!(slow.is_cancelled());
        let rest: Vec<_> = std::iter::from_fn(|| topic(deliveries.try_recv())).collect();
        assert_eq!(rest, ["t2", "t3", "t4"]);
    }

    /// A receiver that waits after draining is woken by the next push, and pushes offered behind it need no wake of
    /// their own to be found.
    #[tokio::test]
    async fn a_drained_receiver_is_woken_by_the_next_push() {
        let (mailbox, mut deliveries, _slow) = Mailbox::new(8);
        for round in 0..3 {
            let waiting = tokio::spawn(async move {
                let first = topic(deliveries.recv().await);
                let mut got = vec![first];
                got.extend(std::iter::from_fn(|| deliveries.try_recv().map(|d| topic(Some(d)))));
                (got, deliveries)
            });
            tokio::task::yield_now().await;
            assert!(mailbox.offer(push(round * 2)) && mailbox.offer(push(round * 2 + 1)));
            let (got, back) = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
                .await
                .expect("woken within 5 s")
                .expect("the receiver ran");
            let want: Vec<Option<String>> = vec![Some(format!("t{}", round * 2)), Some(format!("t{}", round * 2 + 1))];
            assert_eq!(got, want);
            deliveries = back;
        }
    }

    /// Pushes offered before the last handle went are all received before the end.
    #[tokio::test]
    async fn the_end_comes_after_every_push() {
        let (mailbox, mut deliveries, _slow) = Mailbox::new(4);
        let other = mailbox.clone();
        assert!(mailbox.offer(push(1)) && other.offer(push(2)));
        drop((mailbox, other));
        assert_eq!(topic(deliveries.recv().await).as_deref(), Some("t1"));
        assert_eq!(topic(deliveries.recv().await).as_deref(), Some("t2"));
        assert_eq!(topic(deliveries.recv().await), None);
    }

    /// A session that is gone refuses pushes, so that the fan-out drops its entries.
    #[test]
    fn a_mailbox_whose_session_is_gone_refuses() {
        let (mailbox, deliveries, slow) = Mailbox::new(4);
        drop(deliveries);
        assert!(!mailbox.offer(push(0)));
        assert!(mailbox.is_slow() && !slow.is_cancelled(), "dropped from the fan-out, not reported slow");
    }
}
