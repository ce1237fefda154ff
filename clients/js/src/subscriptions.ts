// The subscriptions as the client keeps them between reconnects: which events and notifications are new to the app,
// and the `seq` each topic resumes from.
import type { ServerSubscribe } from './common.js';
import type { Gap, TidingsEvent, TidingsNotification, Subscription } from './options.js';

/** The topic whose subscription carries the user's notifications instead of events. */
export const NOTIFICATIONS = 'notifications';

/** A subscription with what resuming it needs beyond what the app sees. */
export interface SubscriptionRecord extends Subscription {
  /**
   * From the `subscribe` sent until its reply is handled. Under Node's ws the reply and the events right behind it
   * can be emitted in one synchronous burst, before the code awaiting the reply resumes; a pending record lets
   * those events count toward lastSeq. It is not listed by subscriptions(), and not resumed.
   */
  pending: boolean;
  /**
   * Seqs above lastSeq already delivered to the app outside the subscription: the notifications the server pushes
   * at sign-in, before the subscription is resumed. When the subscription brings one of them again, it is dropped.
   */
  ahead: Set<number>;
}

/** The record of a subscription about to be asked for, with `since` if given; its reply completes it. */
export function pending(topic: string, since: number | undefined): SubscriptionRecord {
  // Without since only live events come, every one above the reply's seq, which is not known yet.
  return { topic, subscriptionId: '', lastSeq: since ?? 0, pending: true, ahead: new Set() };
}

/**
 * Completes a record with the reply to its `subscribe`, sent with `since` (undefined: live events only), and
 * returns the gap to report when the server could not replay every event after since. Events that came in the
 * same burst as the reply may have moved lastSeq on already: it never goes back.
 */
export function applyReply(sub: SubscriptionRecord, reply: ServerSubscribe['payload'], since: number | undefined): Gap | undefined {
  sub.pending = false;
  sub.subscriptionId = reply.subscriptionId;
  if (reply.recovered === undefined || reply.recovered === null) delete sub.recovered;
  else sub.recovered = reply.recovered;
  // recovered false: no replay comes, and live events go on after the reply's seq.
  const from = reply.recovered === false ? reply.seq : (since ?? reply.seq);
  if (from > sub.lastSeq) advance(sub, from);
  return reply.recovered === false ? { topic: sub.topic, since: since ?? reply.seq, seq: reply.seq } : undefined;
}

/** The subscription as the app sees it: a copy, without the client's bookkeeping. */
export function view(sub: SubscriptionRecord): Subscription {
  const out: Subscription = { topic: sub.topic, subscriptionId: sub.subscriptionId, lastSeq: sub.lastSeq };
  if (sub.recovered !== undefined) out.recovered = sub.recovered;
  return out;
}

/** Moves lastSeq on to seq, and forgets what it delivered ahead that lastSeq now covers. */
export function advance(sub: SubscriptionRecord, seq: number): void {
  sub.lastSeq = seq;
  for (const delivered of sub.ahead) if (delivered <= seq) sub.ahead.delete(delivered);
}

/** Whether an event of this subscription is new to the app; counts it toward lastSeq. */
export function countEvent(sub: SubscriptionRecord | undefined, event: TidingsEvent): boolean {
  if (sub === undefined || typeof event.seq !== 'number') return true;
  // Events at or below the last seq seen were delivered before the reconnect.
  if (event.seq <= sub.lastSeq) return false;
  advance(sub, event.seq);
  return true;
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
