// The subscriptions as the client keeps them between reconnects: which events and notifications are new to the app,
// and the `seq` each subscription resumes from.
import type { Query, Resource, ServerSubscribe, TidingsError } from './common.js';
import type { Gap, TidingsEvent, TidingsNotification, Subscription, Unsubscribed } from './options.js';
import { canonicalQuery } from './query.js';

/** The topic whose subscription carries the user's notifications instead of events. */
export const NOTIFICATIONS = 'notifications';

/** What starts a presence topic (`presence:order:ORD-1`, protocol 1.2): who is at the topic after it. */
export const PRESENCE_PREFIX = 'presence:';

/** Whether a topic is the presence of another (docs/protocol.md, 8.7). */
export function isPresenceTopic(topic: string): boolean {
  return topic.startsWith(PRESENCE_PREFIX);
}

/** A subscription with what resuming it needs beyond what the app sees. */
export interface SubscriptionRecord extends Subscription {
  /** Its key among the client's subscriptions: subscriptionKey(topic, query). */
  key: string;
  /** Whether it asked for a snapshot: resuming it asks again, and the server sends one only when it cannot replay. */
  snapshot: boolean;
  /**
   * From the `subscribe` sent until its reply is handled. It is not listed by subscriptions(), and not resumed.
   * The reply completes the record the moment it arrives, before the events that follow it in the same burst.
   */
  pending: boolean;
  /**
   * Seqs above lastSeq already delivered to the app outside the subscription: the notifications the server pushes
   * at sign-in, before the subscription is resumed. When the subscription brings one of them again, it is dropped.
   */
  ahead: Set<number>;
  /**
   * The events held back from the client's own listeners until the caller of subscribe() has its Subscription (a
   * query's id, a snapshot's items), for a subscription with a query or a snapshot; undefined once they are
   * released. Its handles get them at once, and hold them themselves.
   */
  held: TidingsEvent[] | undefined;
  /** The end the server pushed while events were held: the client's listeners hear it after them. */
  heldEnd?: Unsubscribed;
  /**
   * Whether its events carry `seq`, so that a resume asks for what it missed with `since`. False for a presence
   * topic, and once an event without `seq` came (an ephemeral type's, 8.8): nothing of theirs is in a log, so a
   * `since` could only be answered "not recovered", a gap that no re-read would fill.
   */
  resumable: boolean;
  /**
   * On a presence topic, the members present, by id, as the reply and the events since have them: a second
   * handle of the subscription starts from them, since the server cannot be asked again (CONFLICT) and presence
   * has no list to read. Undefined on other topics.
   */
  members: Map<string, Resource> | undefined;
}

/**
 * The key of a subscription among the client's: the topic, or for a query, the topic, `?` and the query's canonical
 * form. A connection holds each once, as the server does, so the plain topic and any number of its queries coexist.
 */
export function subscriptionKey(topic: string, query: Query | null | undefined): string {
  return query === undefined || query === null ? topic : `${topic}?${canonicalQuery(query)}`;
}

/** The record of a subscription about to be asked for, with `since` if given; its reply completes it. */
export function pending(topic: string, query: Query | undefined, since: number | undefined, snapshot: boolean): SubscriptionRecord {
  // Without since only live events come, every one above the reply's seq, which is not known yet.
  const sub: SubscriptionRecord = {
    key: subscriptionKey(topic, query),
    topic,
    subscriptionId: '',
    lastSeq: since ?? 0,
    snapshot,
    pending: true,
    ahead: new Set(),
    held: undefined,
    resumable: !isPresenceTopic(topic),
    members: isPresenceTopic(topic) ? new Map() : undefined,
  };
  if (query !== undefined) sub.query = query;
  return sub;
}

/** The subscription's record whose events carry this subscriptionId, or for an event without one, the topic's. */
export function recordOf(
  subscriptions: Map<string, SubscriptionRecord>,
  subscriptionId: string | null | undefined,
  topic: string | null | undefined,
): SubscriptionRecord | undefined {
  if (subscriptionId) {
    for (const sub of subscriptions.values()) if (sub.subscriptionId === subscriptionId) return sub;
    return undefined;
  }
  return topic ? subscriptions.get(topic) : undefined;
}

/**
 * Completes a record with the reply to its `subscribe`, sent with `since` (undefined: live events only), and
 * returns the gap to report when the server could not replay every event after since, with the snapshot the reply
 * carries in its place. Events may have moved lastSeq on already: it never goes back.
 */
export function applyReply(sub: SubscriptionRecord, reply: ServerSubscribe['payload'], since: number | undefined): Gap | undefined {
  sub.pending = false;
  sub.subscriptionId = reply.subscriptionId;
  if (reply.recovered === undefined || reply.recovered === null) delete sub.recovered;
  else sub.recovered = reply.recovered;
  // recovered false: no replay comes, and live events go on after the reply's seq.
  const from = reply.recovered === false ? reply.seq : (since ?? reply.seq);
  if (from > sub.lastSeq) advance(sub, from);
  if (sub.members !== undefined && Array.isArray(reply.items)) sub.members = new Map(reply.items.map((m) => [m.id, m]));
  if (reply.recovered !== false) return undefined;
  const gap: Gap = { topic: sub.topic, subscriptionId: sub.subscriptionId, since: since ?? reply.seq, seq: reply.seq };
  if (sub.query !== undefined) gap.query = sub.query;
  return withSnapshot(gap, reply);
}

/**
 * Completes a record with the reply to the `subscribe` that resumes it after a reconnect, and returns the gap to
 * report. A presence topic is resumed without `since` and has no history to replay: each resume is a gap, which
 * carries the members present now, to replace those the client held (its own among them ended with the old
 * connection).
 */
export function applyResume(sub: SubscriptionRecord, reply: ServerSubscribe['payload'], since: number | undefined): Gap | undefined {
  const gap = applyReply(sub, reply, since);
  if (gap !== undefined || sub.members === undefined) return gap;
  const reset: Gap = { topic: sub.topic, subscriptionId: sub.subscriptionId, since: sub.lastSeq, seq: reply.seq };
  return withSnapshot(reset, { ...reply, items: [...sub.members.values()] });
}

/** The subscription as the app sees it: a copy, without the client's bookkeeping; with the reply's snapshot if given. */
export function view(sub: SubscriptionRecord, reply?: ServerSubscribe['payload']): Subscription {
  const out: Subscription = { topic: sub.topic, subscriptionId: sub.subscriptionId, lastSeq: sub.lastSeq };
  if (sub.query !== undefined) out.query = sub.query;
  if (sub.recovered !== undefined) out.recovered = sub.recovered;
  return reply === undefined ? out : withSnapshot(out, reply);
}

/** The members a presence subscription holds now, as the `items` of one more handle of it; undefined on other topics. */
export function membersOf(sub: SubscriptionRecord): Resource[] | undefined {
  return sub.members === undefined ? undefined : [...sub.members.values()];
}

/** Copies a reply's snapshot, when it has one, onto a gap or a view. */
function withSnapshot<T extends { items?: Resource[]; nextCursor?: string | null }>(target: T, reply: ServerSubscribe['payload']): T {
  if (Array.isArray(reply.items)) {
    target.items = reply.items;
    target.nextCursor = reply.nextCursor ?? null;
  }
  return target;
}

/** What `unsubscribed` reports of a subscription that ended. */
export function ended(sub: SubscriptionRecord, reason: TidingsError): Unsubscribed {
  const info: Unsubscribed = { topic: sub.topic, subscriptionId: sub.subscriptionId, reason };
  if (sub.query !== undefined) info.query = sub.query;
  return info;
}

/** Moves lastSeq on to seq, and forgets what it delivered ahead that lastSeq now covers. */
export function advance(sub: SubscriptionRecord, seq: number): void {
  sub.lastSeq = seq;
  for (const delivered of sub.ahead) if (delivered <= seq) sub.ahead.delete(delivered);
}

/** Whether an event of this subscription is new to the app; counts it toward lastSeq. */
export function countEvent(sub: SubscriptionRecord | undefined, event: TidingsEvent): boolean {
  if (sub?.members !== undefined) keepMember(sub.members, event);
  // An event in no log (presence, an ephemeral type) is always new, and the subscription has nothing to resume.
  if (sub !== undefined && typeof event.seq !== 'number') sub.resumable = false;
  if (sub === undefined || typeof event.seq !== 'number') return true;
  // Events at or below the last seq seen were delivered before the reconnect.
  if (event.seq <= sub.lastSeq) return false;
  advance(sub, event.seq);
  return true;
}

/** Applies a presence event to the members a subscription holds: a join or a change holds the member, a leave drops it. */
function keepMember(members: Map<string, Resource>, event: TidingsEvent): void {
  const { id, version } = event;
  if (typeof id !== 'string' || typeof version !== 'number') return;
  const held = members.get(id);
  if (event.eventType === 'presence_deleted') return void members.delete(id);
  if (event.eventType !== 'presence_created' && event.eventType !== 'presence_updated') return;
  if (held !== undefined && held.version >= version) return;
  const at = event.occurredAt ?? Date.now();
  const ownerId = event.ownerId ?? held?.ownerId ?? '';
  members.set(id, { resourceType: 'presence', id, version, ownerId, createdAt: held?.createdAt ?? at, updatedAt: at, data: event.data });
}

/**
 * Whether a notification is new to the app; counts it toward the `notifications` subscription, if there is one.
 *
 * One that comes through the subscription moves lastSeq on. One pushed at sign-in (without subscriptionId) is
 * kept in `ahead` instead: lastSeq cannot jump to its seq, because a notification in between that another
 * connection of the user received meanwhile is not pushed at sign-in, and only the resume's replay after lastSeq
 * brings it. When that replay, or a later resume's, brings a notification of `ahead` again, it is dropped.
 */
export function countNotification(sub: SubscriptionRecord | undefined, notification: TidingsNotification): boolean {
  if (sub === undefined) return true;
  const { seq } = notification;
  if (seq <= sub.lastSeq) return false;
  const seen = sub.ahead.has(seq);
  if (notification.subscriptionId) advance(sub, seq);
  else sub.ahead.add(seq);
  return !seen;
}
