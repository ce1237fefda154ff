// A strict TypeScript app of the bindings, compiled by test/types.test.mjs: what the hooks return is typed, and a
// mistake in their use does not compile.
import { createElement, type ReactElement } from 'react';
import { createClient, q, type Resource, type TidingsEvent } from 'tidings';
import { TidingsProvider, useClient, useLive, usePresence, useSubscription, type LiveState, type PresenceView, type SubscriptionState } from '../dist/index.js';

export function Orders(): ReactElement {
  const live = useLive('order', q.eq('data.status', 'pending'), { compare: (a, b) => b.createdAt - a.createdAt });
  const first: Resource | undefined = live.items[0];
  const status: 'loading' | 'live' | 'resyncing' | 'closed' = live.status;
  const feed = useSubscription('order', { keep: 5, onEvent: (event: TidingsEvent) => void event.seq });
  const client = useClient();
  // @ts-expect-error items is read-only
  live.items.push(first);
  // @ts-expect-error a subscription's status is not a live collection's
  const wrong: typeof status = feed.status;
  const here: PresenceView = usePresence('order:ORD-1', { name: 'Bob', status: 'editing' }, { timeoutMs: 5000 });
  const editing = here.members.filter((m) => m.state['status'] === 'editing' && !m.self).map((m) => m.userId);
  const users: number = here.users.size;
  // @ts-expect-error a state is an object
  usePresence('order', 'editing');
  const states: [LiveState, SubscriptionState, PresenceView] = [live, feed, here];
  void [client, wrong, states, editing, users];
  return createElement('p', null, `${status}: ${live.items.length}, ${feed.events.length} events, ${feed.last?.eventType ?? ''}`);
}

export function App(): ReactElement {
  const client = createClient({ url: 'ws://127.0.0.1:8080/ws', token: 't' });
  // @ts-expect-error the provider needs a client
  createElement(TidingsProvider, {});
  return createElement(TidingsProvider, { client }, createElement(Orders));
}
