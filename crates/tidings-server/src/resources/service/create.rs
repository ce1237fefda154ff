//! `create`, the one change a session may queue: checked on the caller's task, then written and committed, and its
//! event published by the caller once the commit is in, or by a task of its own if the caller goes away first, so
//! that a connection's consecutive creates can share a commit and a caller that goes away cannot stop one between
//! its commit and its event's publication.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;

use serde_json::{Map, Value};
use tidings_protocol::{Create, ErrorPayload, Resource};

use super::{key_reused, new_id, prepare_new, rewritten_by_hook, shown, Resources, ID_DRAWS};
use crate::auth::Identity;
use crate::detached::detached;
use crate::errors::{forbidden, internal, storage_error};
use crate::resources::access::Operation;
use crate::resources::before::{self, Change, Verdict};
use crate::resources::data::fingerprint;
use crate::resources::types::ResourceTypeDef;
use crate::storage::{
    panic_message, Committing, CreateOutcome, EventKind, EventRecord, IdempotencyKey, NewRecord, Record, StorageError,
};

/// A create that passed its checks, ready to be written.
struct Checked {
    def: Arc<ResourceTypeDef>,
    who: Identity,
    new: NewRecord,
    key: Option<IdempotencyKey>,
}

/// Where a create stands after its first step.
enum Started {
    /// Answered without a write: refused, replayed from a receipt, or broadcast (an ephemeral type).
    Answered(Result<Created, ErrorPayload>),
    /// Checked, to be written.
    Checked(Box<Checked>),
}

/// A create handed to [`Resources::queue_create`]: [`QueuedCreate::answer`] waits for its answer.
#[derive(Debug)]
pub enum QueuedCreate {
    /// Answered in its first step, without a write.
    Answered(Result<Created, ErrorPayload>),
    /// Its write is queued and the caller finishes it: see [`Finishing`].
    Queued(Finishing),
    /// Its second step (the commit, the event's publication) runs on a task of its own.
    Committing(tokio::task::JoinHandle<Result<Created, ErrorPayload>>),
}

impl QueuedCreate {
    /// The create's answer, once it is committed and its event published.
    pub async fn answer(self) -> Result<Created, ErrorPayload> {
        match self {
            QueuedCreate::Answered(answer) => answer,
            QueuedCreate::Queued(finishing) => finishing.answer().await,
            QueuedCreate::Committing(task) => joined(task).await,
        }
    }
}

/// A queued create whose caller waits for the commit itself and then publishes the event: a task of its own would
/// cost a trip through the runtime's queue between the commit and the answer, and under load, with thousands of
/// sessions ready to run, that trip is as long as a round of all of them. A caller that goes away before the
/// publication drops this, and the drop hands what is left to a task of its own, so that a committed create is
/// always published.
pub struct Finishing {
    resources: Resources,
    /// Taken once the outcome is in and nothing waits any more.
    rest: Option<(Box<Checked>, Committing<CreateOutcome>)>,
}

impl std::fmt::Debug for Finishing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finishing").field("pending", &self.rest.is_some()).finish_non_exhaustive()
    }
}

impl Finishing {
    async fn answer(mut self) -> Result<Created, ErrorPayload> {
        let outcome = match self.rest.as_mut() {
            Some((_, committing)) => committing.as_mut().await,
            None => return Err(internal("a create was answered twice")),
        };
        // From here to the publication nothing waits, so a caller that goes away cannot come between them.
        let Some((checked, _)) = self.rest.take() else { return Err(internal("a create was answered twice")) };
        if matches!(outcome, Err(StorageError::IdTaken)) {
            // All but impossible (see `finish_create`): the retried write is a write of its own, so it runs to
            // its end whether or not the caller waits.
            let (this, outcome) = (self.resources.clone(), Box::pin(async { outcome }));
            return detached(async move { this.finish_create(checked, outcome).await }).await;
        }
        let resources = &self.resources;
        std::panic::catch_unwind(AssertUnwindSafe(|| resources.publish_created(checked, outcome))).unwrap_or_else(
            |panic| Err(internal(&format!("a change failed: its publication panicked: {}", panic_message(&*panic)))),
        )
    }
}

impl Drop for Finishing {
    fn drop(&mut self) {
        let Some((checked, committing)) = self.rest.take() else { return };
        let this = self.resources.clone();
        let work = async move { this.finish_create(checked, committing).await };
        // Outside a runtime (it is shutting down) there is no task to hand it to: the create may still commit,
        // and then its event reaches subscribers when a later event of its type fills the gap.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(tracing::Instrument::in_current_span(work));
        }
    }
}

/// A create's task's answer; a task that panicked answers INTERNAL.
async fn joined(task: tokio::task::JoinHandle<Result<Created, ErrorPayload>>) -> Result<Created, ErrorPayload> {
    task.await.unwrap_or_else(|e| Err(internal(&format!("a change failed: {e}"))))
}

/// What a create answers: the resource, and whether this request made it (false when a retry with the same
/// requestId found the first one's receipt).
#[derive(Debug)]
pub struct Created {
    /// The resource as stored.
    pub resource: Resource,
    /// True when this request created it; false for a replayed create.
    pub fresh: bool,
}

impl Resources {
    /// `create`: validates, applies defaults, stores; a repeated requestId replays the first result. The whole
    /// create runs on a task of its own (`detached.rs`): a caller that goes away (an HTTP client that hangs up) stops
    /// neither the write nor the publication of its event.
    pub async fn create(
        &self,
        who: &Identity,
        request_id: Option<&str>,
        create: Create,
    ) -> Result<Created, ErrorPayload> {
        let (this, who, request_id) = (self.clone(), who.clone(), request_id.map(str::to_owned));
        detached(async move { this.queue_create(&who, request_id.as_deref(), create).await.answer().await }).await
    }

    /// `create` for a caller with several in a row (a connection's pipelined creates): returns once the create is
    /// checked and its write queued, with what answers it. Creates queued one after another are stored in that
    /// order, and may share a commit.
    ///
    /// The checks run on the caller's task, so that the caller goes straight on to its next create: handing them to
    /// a task of its own and waiting for that task to queue the write cost a task switch each way, and under load
    /// the switch back waited behind every task ready to run, once per create (a connection's 32 pipelined creates
    /// took as many rounds of the runtime's queue). A panic in them is an INTERNAL answer, as a panic in a task is.
    /// Once the write is queued, a caller that goes away stops neither the commit nor the publication of its event:
    /// what follows the write runs on a task of its own if the caller does not wait for it ([`Finishing`]).
    pub async fn queue_create(&self, who: &Identity, request_id: Option<&str>, create: Create) -> QueuedCreate {
        let first = AssertUnwindSafe(self.start_create(who, request_id, create)).catch_unwind().await;
        match first {
            Ok(Started::Answered(answer)) => QueuedCreate::Answered(answer),
            Ok(Started::Checked(checked)) => self.write_create(checked).await,
            Err(panic) => {
                let message = format!("a change failed: its check panicked: {}", panic_message(&*panic));
                QueuedCreate::Answered(Err(internal(&message)))
            }
        }
    }

    /// Queues a checked create's write; the rest (the commit's outcome, the event's publication, the answer) is
    /// the caller's to wait for, or a task's of its own.
    async fn write_create(&self, checked: Box<Checked>) -> QueuedCreate {
        let this = self.clone();
        if self.storage.queues_creates() {
            // Queueing only queues (the storage contract): dropped before it returns, it wrote nothing, and from its
            // return to the `Finishing` below nothing waits, so a queued write always has its publisher.
            let committing = self.storage.queue_create(checked.new.clone(), checked.key.clone()).await;
            return QueuedCreate::Queued(Finishing { resources: this, rest: Some((checked, committing)) });
        }
        // This backend commits within the call (PostgreSQL): the call runs in the task that publishes, so that a
        // caller that goes away cannot stop between the commit and the publication, and the caller waits for the
        // commit, which keeps its creates in the order it sent them.
        let (committed, commit_done) = tokio::sync::oneshot::channel::<()>();
        let work = async move {
            let committing = this.storage.queue_create(checked.new.clone(), checked.key.clone()).await;
            drop(committed);
            this.finish_create(checked, committing).await
        };
        let task = tokio::spawn(tracing::Instrument::in_current_span(work));
        // Err once the sender is gone: committed (or the task panicked, which `answer` reports).
        let _ = commit_done.await;
        QueuedCreate::Committing(task)
    }

    /// Whether a create may be queued behind the creates before it, or must wait for them to be committed: a
    /// type's before-commit hook must see what came before (a retry's receipt, the state it reads), and an
    /// ephemeral type's broadcast goes out at once, so it must not overtake the events of earlier creates.
    pub fn may_queue(&self, create: &Create) -> bool {
        self.types
            .get(create.resource_type.as_str())
            .is_none_or(|def| !def.config.ephemeral && !def.before.as_ref().is_some_and(|before| before.sees("create")))
    }

    /// A create's first step: its checks, up to the record to write, or its answer when it needs no write.
    async fn start_create(&self, who: &Identity, request_id: Option<&str>, create: Create) -> Started {
        let def = match self.type_of(create.resource_type.as_str()) {
            Ok(def) => Arc::clone(def),
            Err(error) => return Started::Answered(Err(error)),
        };
        if def.config.ephemeral {
            return Started::Answered(self.broadcast(&def, who, create.data).await);
        }
        let key = request_id.map(|request_id| IdempotencyKey {
            user_id: who.user_id.clone(),
            request_id: request_id.to_owned(),
            fingerprint: fingerprint(def.name(), &create.data),
        });
        // A retried create that was committed replays the first one's reply without asking the hook again.
        if def.before.as_ref().is_some_and(|before| before.sees("create")) {
            match self.receipt(key.as_ref(), def.name()).await {
                Ok(Some(receipt)) => {
                    let replayed = serde_json::from_str::<Record>(&receipt)
                        .map_err(|_| internal("an unreadable receipt"))
                        .and_then(|record| shown(&def, who, record))
                        .map(|resource| Created { resource, fresh: false });
                    return Started::Answered(replayed);
                }
                Ok(None) => {}
                Err(error) => return Started::Answered(Err(error)),
            }
        }
        let data = match self.checked_create(&def, who, create.data).await {
            Ok(data) => data,
            Err(error) => return Started::Answered(Err(error)),
        };
        let new = NewRecord {
            resource_type: def.name().to_owned(),
            id: new_id(&def.config.id_prefix),
            owner_id: who.user_id.clone(),
            data,
        };
        Started::Checked(Box::new(Checked { def, who: who.clone(), new, key }))
    }

    /// A create's second step: its commit's outcome, its event published, its answer.
    async fn finish_create(
        &self,
        checked: Box<Checked>,
        committing: Committing<CreateOutcome>,
    ) -> Result<Created, ErrorPayload> {
        let mut checked = checked;
        let mut outcome = committing.await;
        // With 80 random bits a taken id is all but impossible; if one comes, another draw settles it. (Such a
        // create is stored after the ones queued behind it: the order of queued creates holds but for this.)
        for _ in 0..ID_DRAWS {
            if !matches!(outcome, Err(StorageError::IdTaken)) {
                break;
            }
            checked.new.id = new_id(&checked.def.config.id_prefix);
            outcome = self.storage.create(checked.new.clone(), checked.key.clone()).await;
        }
        self.publish_created(checked, outcome)
    }

    /// A committed create's event published, and its answer; or the answer to a create that failed.
    fn publish_created(
        &self,
        checked: Box<Checked>,
        outcome: Result<CreateOutcome, StorageError>,
    ) -> Result<Created, ErrorPayload> {
        let Checked { def, who, key: _, new: _ } = *checked;
        match outcome {
            Ok(CreateOutcome::Created(record, event)) => {
                self.publish(event);
                Ok(Created { resource: shown(&def, &who, record)?, fresh: true })
            }
            Ok(CreateOutcome::Replayed(record)) => Ok(Created { resource: shown(&def, &who, record)?, fresh: false }),
            Err(StorageError::KeyReused) => Err(key_reused()),
            Err(e) => Err(storage_error(e, def.name(), None)),
        }
    }

    /// A create of an ephemeral type: checked as any create, then fanned out at once as an event in no log
    /// (`seq` 0), and not stored: no read finds it, no resume replays it, and a retry broadcasts it again.
    async fn broadcast(
        &self,
        def: &ResourceTypeDef,
        who: &Identity,
        data: Map<String, Value>,
    ) -> Result<Created, ErrorPayload> {
        let data = self.checked_create(def, who, data).await?;
        let new = NewRecord {
            resource_type: def.name().to_owned(),
            id: new_id(&def.config.id_prefix),
            owner_id: who.user_id.clone(),
            data,
        };
        let record = new.created_at(tidings_protocol::now_ms());
        let event = EventRecord::of(&record, EventKind::Created, &who.user_id, 0, record.created_at, None);
        self.relay.ephemeral(event);
        Ok(Created { resource: shown(def, who, record)?, fresh: true })
    }

    /// The data of a create by `who`, checked under the type's rules and schema, with defaults, and as the type's
    /// before-commit hook accepts or rewrites it.
    pub(super) async fn checked_create(
        &self,
        def: &ResourceTypeDef,
        who: &Identity,
        data: Map<String, Value>,
    ) -> Result<Map<String, Value>, ErrorPayload> {
        // The rule sees the data as sent, before defaults: what the user asks to write.
        if !def.allows(Operation::Create, who, None, Some(&data)) {
            return Err(forbidden(format!("you may not create {}", def.name())));
        }
        let data = prepare_new(def, who, data)?;
        let Some(before) = def.before.as_ref().filter(|before| before.sees("create")) else { return Ok(data) };
        let change = Change {
            operation: "create",
            resource_type: def.name(),
            who,
            data: Some(&data),
            patch: None,
            resource: None,
        };
        match before::ask(before, change).await {
            Verdict::Refuse(error) => Err(error),
            Verdict::Proceed(Some(rewritten)) => rewritten_by_hook(def, rewritten),
            Verdict::Proceed(None) => Ok(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use tidings_protocol::{Create, ResourceType, Topic};

    use super::QueuedCreate;
    use crate::auth::Identity;
    use crate::config::Config;
    use crate::hub::{Deliveries, Delivery, Follow, Hub, Mailbox, Scope};
    use crate::notifications::Notifier;
    use crate::relay::Relay;
    use crate::resources::types::ResourceTypes;
    use crate::resources::Resources;

    /// The resource service of a server on SQLite in `dir`, and the deliveries of a subscriber of `order`.
    async fn orders(dir: &std::path::Path) -> (Resources, Deliveries, Mailbox) {
        let config = Config { data_dir: dir.to_owned(), ..Config::default() };
        let types = Arc::new(ResourceTypes::compile(&config.resource_types).expect("the default types"));
        let storage = crate::storage::open(&config).await.expect("SQLite opens");
        let hub = Hub::new();
        let (broker, _inbound) = crate::broker::open(&config.broker, "node").expect("the in-memory broker");
        let presence = crate::presence::Presence::new("node", Arc::clone(&broker));
        let relay = Relay::new(Arc::clone(&hub), presence, broker, Arc::clone(&storage));
        relay.start_streams(types.names()).await.expect("the event log is read");
        let notifier = Notifier::new(Arc::clone(&storage), Arc::clone(&relay));
        let (mailbox, deliveries, _slow) = Mailbox::new(16);
        let topic = Topic::new("order").expect("a topic");
        hub.subscribe(&Follow::topic(topic), &mailbox, Scope::All, None);
        (Resources::new(types, storage, relay, notifier), deliveries, mailbox)
    }

    fn an_order() -> Create {
        let data = json!({ "productId": "P1", "quantity": 1, "totalAmount": 5 });
        let serde_json::Value::Object(data) = data else { unreachable!("an object") };
        Create { resource_type: ResourceType::new("order").expect("a type"), data }
    }

    async fn next_event(deliveries: &mut Deliveries) -> String {
        let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.recv()).await;
        match delivery.expect("an event within 10 s") {
            Some(Delivery::Event(event)) => event.text.whole(),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// A queued create's caller waits for the commit and publishes the event itself; a caller that goes away
    /// before that (drops what it queued) still has its create committed and its event published.
    #[tokio::test]
    async fn a_queued_create_is_published_whether_or_not_its_caller_waits() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (resources, mut deliveries, _mailbox) = orders(dir.path()).await;
        let who = Identity::of("alice", &[]);

        let queued = resources.queue_create(&who, Some("r1"), an_order()).await;
        assert!(matches!(queued, QueuedCreate::Queued(_)), "SQLite queues, and the caller finishes: {queued:?}");
        let created = queued.answer().await.expect("created");
        let event = next_event(&mut deliveries).await;
        assert!(event.contains(created.resource.id.as_str()), "the event of the answered create: {event}");

        let dropped = resources.queue_create(&who, Some("r2"), an_order()).await;
        drop(dropped);
        let event = next_event(&mut deliveries).await;
        assert!(event.contains("\"seq\":2"), "the dropped create's event, after the first: {event}");
        let replayed = resources.create(&who, Some("r2"), an_order()).await.expect("a retry is answered");
        assert!(!replayed.fresh && event.contains(replayed.resource.id.as_str()), "it was committed once: {event}");
    }
}
