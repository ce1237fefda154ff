//! One hook's deliverer: holds the hook's lease, reads its type's log after the cursor, posts each event it wants
//! (retrying with backoff and jitter), moves the cursor after each, and pauses the hook after a run of failures.
//!
//! At least once: the cursor moves only after the endpoint answered 2xx, so an event whose answer was lost (a
//! crash, a timeout) is posted again. In order: an event is posted only once every earlier one is done with.

use std::sync::Arc;
use std::time::Duration;

use tidings_protocol::now_ms;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{signature, Hook};
use crate::metrics::{WEBHOOK_LAG, WEBHOOK_PAUSED, WEBHOOK_REQUESTS};
use crate::push::encode_event;
use crate::storage::{EventRecord, HookControl, HookState, Storage};

/// How often an idle deliverer (no new event, paused, or not holding the lease) looks again.
const POLL: Duration = Duration::from_millis(250);
/// Events read from the log per step.
const BATCH: usize = 100;

/// What became of a step of delivery.
enum Step {
    /// Go on with the next event.
    Next,
    /// Read the state again: an operator changed it, the hook paused, or the lease was lost.
    Reread,
    /// The server is stopping.
    Stop,
}

pub(super) struct Deliverer {
    hook: Arc<Hook>,
    storage: Arc<dyn Storage>,
    node: String,
    agent: ureq::Agent,
    /// When this node's lease was last renewed, Unix ms.
    leased_at: u64,
}

impl Deliverer {
    pub(super) fn new(hook: Arc<Hook>, storage: Arc<dyn Storage>, node: String) -> Deliverer {
        let timeout = Duration::from_millis(hook.config.timeout_ms);
        // Any answer is an answer: a status that is not 2xx is a failure this code reads, not an error of ureq.
        let agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        Deliverer { hook, storage, node, agent, leased_at: 0 }
    }

    pub(super) async fn run(mut self, stop: CancellationToken) {
        let name = self.hook.config.name.clone();
        loop {
            if stop.is_cancelled() {
                // A node that stops gives its leases up, so that another (or this one, restarted under a new
                // name) goes on at once rather than after the lease runs out.
                if self.leased_at > 0 {
                    let _ = self.storage.lease_hook(&name, &self.node, 0).await;
                }
                return;
            }
            let busy = match self.round(&stop).await {
                Ok(busy) => busy,
                Err(error) => {
                    warn!(hook = %name, "webhook delivery stopped for a moment: {error}");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = self.hook.wake.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    /// One round: take the lease, read the state and the next events, deliver them. Whether there was work.
    async fn round(&mut self, stop: &CancellationToken) -> Result<bool, String> {
        if !self.lease().await? {
            return Ok(false);
        }
        let hook = Arc::clone(&self.hook);
        let (name, resource_type) = (&hook.config.name, &hook.config.resource_type);
        let state = match self.storage.hook_state(name).await.map_err(|e| e.to_string())? {
            Some(state) => state,
            None => {
                // A new hook starts at the log's head: it delivers what happens from now on (replay for more).
                let head = self.storage.head(resource_type).await.map_err(|e| e.to_string())?;
                self.storage.advance_hook(name, 0, head, 0, None).await.map_err(|e| e.to_string())?;
                info!(hook = %name, "webhook starts after seq {head}");
                return Ok(true);
            }
        };
        metrics::gauge!(WEBHOOK_PAUSED, "hook" => name.clone()).set(f64::from(u8::from(state.paused)));
        if state.paused {
            return Ok(false);
        }
        let events =
            self.storage.events_after(resource_type, None, state.cursor, BATCH).await.map_err(|e| e.to_string())?;
        let head = self.storage.head(resource_type).await.map_err(|e| e.to_string())?;
        metrics::gauge!(WEBHOOK_LAG, "hook" => name.clone()).set(head.saturating_sub(state.cursor) as f64);
        let Some(first) = events.first() else { return Ok(false) };
        let mut state = state;
        if first.seq != state.cursor + 1 {
            // Pruned by retention before this hook got to them: said, and passed over, since nothing brings them back.
            let lost =
                format!("events {} to {} were pruned from the log before delivery", state.cursor + 1, first.seq - 1);
            warn!(hook = %name, "{lost}");
            state.last_error = Some(lost);
        }
        for event in &events {
            let step = if self.hook.wants(event) {
                let span = tracing::debug_span!(
                    "webhook",
                    otel.name = %format_args!("webhook {}", self.hook.config.name),
                    webhook.name = %self.hook.config.name,
                    event.seq = event.seq,
                );
                tracing::Instrument::instrument(self.deliver(event, &mut state, stop), span).await?
            } else {
                Step::Next
            };
            match step {
                Step::Next => {}
                Step::Reread => return Ok(true),
                Step::Stop => return Ok(false),
            }
            let error = state.last_error.as_deref().filter(|_| state.failures > 0);
            let moved = self.storage.advance_hook(name, state.cursor, event.seq, 0, error).await;
            if !moved.map_err(|e| e.to_string())? {
                // An operator replayed or reset it meanwhile: read where it stands now.
                return Ok(true);
            }
            state.cursor = event.seq;
            state.failures = 0;
            if now_ms() > self.leased_at + hook.config.lease_ms / 3 && !self.lease().await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Posts `event` until the endpoint takes it, the hook pauses after too many failures, an operator changes the
    /// hook, or the lease is lost.
    async fn deliver(
        &mut self,
        event: &EventRecord,
        state: &mut HookState,
        stop: &CancellationToken,
    ) -> Result<Step, String> {
        let hook = Arc::clone(&self.hook);
        let config = &hook.config;
        let body = encode_event(event, &event.resource_type, event.seq, hook.previous_data)
            .ok_or("an event that cannot be encoded")?;
        // The same id on every attempt, so that an endpoint can drop what it already took.
        let id = format!("{}_{}_{}", config.name, event.resource_type, event.seq);
        loop {
            let timestamp = now_ms() / 1000;
            let signed = signature(&hook.key, &id, timestamp, &body);
            let outcome = post(&self.agent, &config.url, &id, timestamp, &signed, &body).await;
            let Err(error) = outcome else {
                metrics::counter!(WEBHOOK_REQUESTS, "hook" => config.name.clone(), "outcome" => "delivered")
                    .increment(1);
                state.last_error = None;
                return Ok(Step::Next);
            };
            metrics::counter!(WEBHOOK_REQUESTS, "hook" => config.name.clone(), "outcome" => "failed").increment(1);
            state.failures += 1;
            state.last_error = Some(error.clone());
            warn!(hook = %config.name, seq = event.seq, attempt = state.failures, "webhook request failed: {error}");
            let recorded = self
                .storage
                .advance_hook(&config.name, state.cursor, state.cursor, state.failures, Some(&error))
                .await
                .map_err(|e| e.to_string())?;
            if !recorded {
                return Ok(Step::Reread);
            }
            if state.failures >= config.max_failures {
                let reason = format!("paused after {} failures in a row; the last: {error}", state.failures);
                warn!(hook = %config.name, "{reason}");
                self.storage.control_hook(&config.name, HookControl::Pause(reason)).await.map_err(|e| e.to_string())?;
                return Ok(Step::Reread);
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(Step::Stop),
                () = self.hook.wake.notified() => return Ok(Step::Reread),
                () = tokio::time::sleep(backoff(config.retry_base_ms, config.retry_max_ms, state.failures)) => {}
            }
            // Still this node's to deliver, and not paused meanwhile?
            if !self.lease().await? {
                return Ok(Step::Reread);
            }
            let now = self.storage.hook_state(&config.name).await.map_err(|e| e.to_string())?;
            if now.is_none_or(|now| now.paused || now.cursor != state.cursor) {
                return Ok(Step::Reread);
            }
        }
    }

    /// Takes or renews this node's lease of the hook; whether it holds it.
    async fn lease(&mut self) -> Result<bool, String> {
        let now = now_ms();
        let held = self.storage.lease_hook(&self.hook.config.name, &self.node, now + self.hook.config.lease_ms).await;
        let held = held.map_err(|e| e.to_string())?;
        if held {
            self.leased_at = now;
        }
        Ok(held)
    }
}

/// The wait before attempt `failures + 1`: `base` doubled per failure, at most `max`, less up to a fifth at
/// random, so that hooks failing together do not retry together.
fn backoff(base_ms: u64, max_ms: u64, failures: u32) -> Duration {
    let full = base_ms.saturating_mul(1 << failures.saturating_sub(1).min(20)).min(max_ms);
    let jitter = rand::random_range(0..=full / 5);
    Duration::from_millis(full - jitter)
}

/// Posts one signed request, off the runtime (ureq blocks); `Ok` for a 2xx answer.
async fn post(
    agent: &ureq::Agent,
    url: &str,
    id: &str,
    timestamp: u64,
    signed: &str,
    body: &str,
) -> Result<(), String> {
    let request = agent
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signed);
    let body = body.to_owned();
    let answer = tokio::task::spawn_blocking(move || request.send(body.as_bytes()).map(|response| response.status()))
        .await
        .map_err(|e| format!("the request task failed: {e}"))?;
    match answer {
        Ok(status) if status.is_success() => Ok(()),
        Ok(status) => Err(format!("HTTP {}", status.as_u16())),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn waits_double_up_to_the_most_with_a_little_less_at_random() {
        for _ in 0..100 {
            let first = backoff(1000, 60_000, 1).as_millis();
            assert!((800..=1000).contains(&first), "{first}");
            let third = backoff(1000, 60_000, 3).as_millis();
            assert!((3200..=4000).contains(&third), "{third}");
            let late = backoff(1000, 60_000, 30).as_millis();
            assert!((48_000..=60_000).contains(&late), "{late}");
        }
    }
}
