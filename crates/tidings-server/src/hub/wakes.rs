//! The sessions to wake because a push reached their empty mailbox, woken a batch at a time by a task of their own.
//!
//! Why not at once: tokio runs woken tasks in the order they were woken, and a fan-out to thousands of mailboxes
//! puts thousands of sessions in its queues. A publisher's commit, woken from the storage thread, then waited behind
//! all of them: each create took a whole round of the sessions, so each session found only one round's few events
//! in its mailbox and wrote them with a `send` of their own, and a `send` costs the server as much as twenty
//! deliveries. Woken a batch at a time, with a yield between batches (tokio runs a yielded task again only after it
//! has looked at its sockets and timers), the sessions leave room for the requests that make events: under
//! `fanout-filtered` (10,000 subscribers over 1,000 queries) a `send` carried 56 events instead of 30, and the
//! server delivered a fifth more.
//!
//! Not too much room, though: woken 32 at a time, sessions fell behind the publishers, whose events piled up in the
//! mailboxes (1.3 GB in one run) and would in the end have flagged readers that read promptly as slow. A batch
//! is therefore at least a quarter of the sessions waiting: a round of them makes way for the publishers about
//! four times, and the publishers cannot run further ahead than that.
//!
//! Only the hub's fan-out of events wakes this way (`Mailbox::offer_in_turn`). Presence and notifications reach a
//! few sessions per change, and those must keep up with thousands of members' requests: woken in turn, the ten
//! followers of a topic that 10,000 members joined and left waited behind the members' sessions until their
//! mailboxes overflowed. For the same reason a mailbox a quarter full wakes its session at once, however it was
//! offered to: being put in turn must never make a prompt reader look slow. The cost is latency under load: a
//! subscriber that an event reaches waits its turn behind a batch, also when it is one of few (one dashboard
//! following a type that thousands of clients write to); no workload measures that case yet.
//!
//! The invariant: a session whose mailbox received a push is woken, late perhaps, but always. Each deferred wake is
//! woken by the task; once the task is gone (its runtime shut down), wakes are woken at once again; and the wakes
//! waiting when the hub goes are woken as it goes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::Notify;

use super::mailbox::Shared;

/// The fewest sessions woken in one batch, per worker thread: few enough that under light load a request waits
/// behind little, enough that the task's own turns cost nothing worth counting.
const BATCH_PER_WORKER: usize = 32;

/// A batch is at least the waiting sessions divided by this (see above): measured against 2 and 8 under
/// `fanout-filtered`, 4 delivered the most.
const ROUND_IN: usize = 4;

/// The waiting wakes, and the task that wakes them.
#[derive(Debug, Default)]
pub(crate) struct Wakes {
    state: Mutex<State>,
    /// Tells the task that wakes are waiting, or that this is gone.
    ready: Arc<Notify>,
}

#[derive(Debug, Default)]
struct State {
    waiting: VecDeque<Arc<Shared>>,
    task: Task,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum Task {
    /// No task yet: the first wake starts it, on the runtime it comes from.
    #[default]
    Unstarted,
    Running,
    /// The task was dropped with its runtime: wakes are woken at once.
    Gone,
}

impl Wakes {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the session of `mailbox` soon: behind the sessions already waiting to be woken.
    pub(super) fn defer(self: &Arc<Self>, mailbox: &Arc<Shared>) {
        let mut state = self.state();
        match state.task {
            Task::Running => {}
            Task::Gone => {
                drop(state);
                mailbox.wake();
                return;
            }
            Task::Unstarted => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    drop(state);
                    mailbox.wake();
                    return;
                };
                let least = BATCH_PER_WORKER * runtime.metrics().num_workers().max(1);
                runtime.spawn(run(Arc::downgrade(self), Arc::clone(&self.ready), least));
                state.task = Task::Running;
            }
        }
        let first = state.waiting.is_empty();
        state.waiting.push_back(Arc::clone(mailbox));
        drop(state);
        if first {
            self.ready.notify_one();
        }
    }

    /// The next batch of wakes, in the order they came: at least `least` of them, when that many wait.
    fn take(&self, least: usize, into: &mut Vec<Arc<Shared>>) {
        let mut state = self.state();
        let n = batch_of(state.waiting.len(), least);
        into.extend(state.waiting.drain(..n));
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        // Gone with wakes still waiting (its hub dropped while mailboxes live on): they are woken now.
        let waiting = std::mem::take(&mut self.state.get_mut().unwrap_or_else(PoisonError::into_inner).waiting);
        for mailbox in waiting {
            mailbox.wake();
        }
        // The task holds only a weak reference: this tells it to look, find nothing, and end.
        self.ready.notify_one();
    }
}

/// How many of `waiting` wakes one batch wakes.
fn batch_of(waiting: usize, least: usize) -> usize {
    waiting.min(least.max(waiting / ROUND_IN))
}

/// The task: wakes a batch, yields, and again, while wakes wait; ends when the [`Wakes`] is gone.
async fn run(wakes: Weak<Wakes>, ready: Arc<Notify>, least: usize) {
    let _gone = Gone(wakes.clone());
    let mut taken = Vec::new();
    loop {
        match wakes.upgrade() {
            Some(wakes) => wakes.take(least, &mut taken),
            None => return,
        }
        if taken.is_empty() {
            ready.notified().await;
            continue;
        }
        for mailbox in taken.drain(..) {
            mailbox.wake();
        }
        tokio::task::yield_now().await;
    }
}

/// Dropped with the task: when its runtime shuts down before the [`Wakes`] goes, the wakes still waiting are woken
/// and later ones are woken at once.
struct Gone(Weak<Wakes>);

impl Drop for Gone {
    fn drop(&mut self) {
        let Some(wakes) = self.0.upgrade() else { return };
        let waiting = {
            let mut state = wakes.state();
            state.task = Task::Gone;
            std::mem::take(&mut state.waiting)
        };
        for mailbox in waiting {
            mailbox.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::batch_of as batch;
    use super::Wakes;
    use crate::hub::{Deliveries, Delivery, LostPush, Mailbox};

    /// A waker that counts its wakes.
    struct Count(AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A mailbox of 16 whose session waits on it, and the count of that session's wakes.
    fn waited_on() -> (Mailbox, Deliveries, Arc<Count>) {
        let (mailbox, mut deliveries) = Mailbox::cancelling(16, CancellationToken::new());
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(Arc::clone(&count));
        let waiting = std::pin::pin!(deliveries.recv()).poll(&mut std::task::Context::from_waker(&waker));
        assert!(waiting.is_pending(), "the session waits");
        (mailbox, deliveries, count)
    }

    fn push() -> Delivery {
        Delivery::Lost(LostPush { topic: Arc::from("t") })
    }

    /// Thousands of sessions get a push at once, from a task, as a fan-out gives them: every one is woken by the
    /// task (their mailboxes hold 16, so that one push is not a quarter full: a quarter full is woken without it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn every_session_given_a_push_is_woken() {
        const SESSIONS: usize = 4096;
        let wakes = Arc::new(Wakes::default());
        let started = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(AtomicUsize::new(0));
        let mut mailboxes = Vec::with_capacity(SESSIONS);
        let mut sessions = Vec::new();
        for _ in 0..SESSIONS {
            let (mailbox, mut deliveries) = Mailbox::cancelling(16, CancellationToken::new());
            let (started, received) = (Arc::clone(&started), Arc::clone(&received));
            sessions.push(tokio::spawn(async move {
                started.fetch_add(1, Ordering::Relaxed);
                deliveries.recv().await.expect("a push");
                received.fetch_add(1, Ordering::Relaxed);
            }));
            mailboxes.push(mailbox);
        }
        // Every session waits on its mailbox (it counts itself in the same poll that registers its wake).
        while started.load(Ordering::Relaxed) < SESSIONS {
            tokio::task::yield_now().await;
        }
        // Offered from a task, as a fan-out offers; the mailboxes and the wakes are kept, since their drops wake too.
        let kept = Arc::clone(&wakes);
        let publisher =
            tokio::spawn(
                async move { (mailboxes.iter().all(|mailbox| mailbox.offer_in_turn(push(), &wakes)), mailboxes) },
            );
        let (offered, _mailboxes) = publisher.await.expect("the publisher ran");
        assert!(offered, "every mailbox took its push");
        for session in sessions {
            tokio::time::timeout(Duration::from_secs(10), session).await.expect("woken").expect("session");
        }
        assert_eq!(received.load(Ordering::Relaxed), SESSIONS);
        drop(kept);
    }

    /// A mailbox a quarter full wakes its session at once, even while its wake waits for the task (which cannot run
    /// here: the test holds the runtime's one thread); a plain offer always does.
    #[tokio::test(flavor = "current_thread")]
    async fn a_mailbox_a_quarter_full_wakes_its_session_at_once() {
        let wakes = Arc::new(Wakes::default());
        let (mailbox, _deliveries, count) = waited_on();
        assert!(mailbox.offer_in_turn(push(), &wakes));
        assert_eq!(count.0.load(Ordering::Relaxed), 0, "the first push's wake waits for the task");
        assert!((2..=3).all(|_| mailbox.offer_in_turn(push(), &wakes)));
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
        assert!(mailbox.offer_in_turn(push(), &wakes), "the fourth of sixteen");
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "a quarter full: woken at once");
        // Presence and notifications offer plainly: their sessions are woken at once.
        let (other, _others, other_count) = waited_on();
        assert!(other.offer(push()));
        assert_eq!(other_count.0.load(Ordering::Relaxed), 1, "a plain offer wakes at once");
    }

    /// Wakes that go while wakes wait in them (their hub dropped before its mailboxes) wake those sessions.
    #[tokio::test(flavor = "current_thread")]
    async fn wakes_that_go_wake_what_waits_in_them() {
        let wakes = Arc::new(Wakes::default());
        let (mailbox, _deliveries, count) = waited_on();
        assert!(mailbox.offer_in_turn(push(), &wakes));
        assert_eq!(count.0.load(Ordering::Relaxed), 0, "the wake waits for the task, which cannot run here");
        drop(wakes);
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "woken as the wakes went");
    }

    /// A batch: at least the least, at least a quarter of those waiting, never more than wait.
    #[test]
    fn a_batch_is_a_quarter_of_those_waiting_or_the_least() {
        assert_eq!(batch(10, 32), 10);
        assert_eq!(batch(100, 32), 32);
        assert_eq!(batch(10_000, 32), 2_500);
        assert_eq!(batch(0, 32), 0);
    }

    /// The task that wakes is dropped with its runtime; the wakes (the hub's), and the mailboxes, may live on in
    /// another: their wakes are then woken at once, and none is lost.
    #[test]
    fn wakes_outlive_the_runtime_of_their_task() {
        let wakes = Arc::new(Wakes::default());
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().expect("a runtime");
        let (mailbox, deliveries) = runtime.block_on(async {
            let (mailbox, mut deliveries) = Mailbox::cancelling(16, CancellationToken::new());
            let waiting = tokio::spawn(async move { (deliveries.recv().await.is_some(), deliveries) });
            tokio::task::yield_now().await;
            assert!(mailbox.offer_in_turn(push(), &wakes), "the first push starts the task");
            let (got, deliveries) = waiting.await.expect("the receiver ran");
            assert!(got);
            (mailbox, deliveries)
        });
        drop(runtime);
        let other = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
        other.block_on(async move {
            let mut deliveries = deliveries;
            let waiting = tokio::spawn(async move { deliveries.recv().await.is_some() });
            tokio::task::yield_now().await;
            assert!(mailbox.offer_in_turn(push(), &wakes));
            let got = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("woken").expect("ran");
            assert!(got);
        });
    }
}
