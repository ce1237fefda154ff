// The subscriptions as the client keeps them between reconnects: which events and notifications are new to the app,
// and the `seq` each topic resumes from.
import type { TidingsEvent, TidingsNotification, Subscription } from './options.js';

/** The topic whose subscription carries the user's notifications instead of events. */
export const NOTIFICATIONS = 'notifications';

/** A subscription with what resuming it needs beyond what the app sees. */
export interface SubscriptionRecord extends Subscription {
  /**
   * Seqs above lastSeq already delivered to the app outside the subscription: the notifications the server pushes
   * at sign-in, before the subscription is resumed. When the subscription brings one of them again, it is dropped.
   */
  ahead: Set<number>;
}

/** A new record of a subscription. */
export function record(topic: string, subscriptionId: string, lastSeq: number): SubscriptionRecord {
  return { topic, subscriptionId, lastSeq, ahead: new Set() };
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
