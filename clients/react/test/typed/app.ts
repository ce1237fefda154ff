// A strict TypeScript app of the hooks on typed resources, compiled by test/typed.test.mjs beside the types that
// `tidings types` wrote for the server's default `order`: what the hooks return is typed per type, without a cast.
import { createElement, type ReactElement } from 'react';
import { createClient, q, type TypedResource } from 'tidings';
import { TidingsProvider, createHooks, type LiveState, type SubscriptionState } from 'tidings-react';
import type { Order, Types } from './types.js';

const { useClient, useLive, useSubscription, usePresence } = createHooks<Types>();

export function Orders(): ReactElement {
  const live = useLive('order', q.eq('data.status', 'pending'), { compare: (a, b) => b.data.totalAmount - a.data.totalAmount });
  const first: TypedResource<'order', Order> | undefined = live.items[0];
  const total: number = live.items.reduce((sum, order) => sum + order.data.totalAmount, 0);
  const unsaved: number = live.items.filter((order) => order.pending === true && order.data.status === 'pending').length;
  const feed = useSubscription('order', { keep: 5, onEvent: (event) => void event.data.quantity });
  const last: string = feed.last === undefined ? '' : `${feed.last.eventType} ${feed.last.seq} ${feed.last.data.productId}`;
  const one = useSubscription('order:ORD-1');
  const shipped = one.events.filter((event) => event.eventType === 'order_updated' && event.data.status === 'shipped').length;
  const client = useClient();
  const create = () => client.create('order', { productId: 'P1', quantity: 1, totalAmount: 2 }).then((order) => order.data.status);
  const here = usePresence('order:ORD-1', { name: 'Bob' });
  const states: [LiveState<TypedResource<'order', Order>>, SubscriptionState<typeof feed.events[number]>] = [live, feed];
  void [first, create, states, here.users.size, unsaved];
  return createElement('p', null, `${total} ${last} ${shipped}`);
}

export function App(): ReactElement {
  const client = createClient<Types>({ url: 'ws://127.0.0.1:8080/ws', token: 't' });
  // A typed client goes into the provider as it is, and so does an untyped one.
  const plain = createClient({ url: 'ws://127.0.0.1:8080/ws', token: 't' });
  return createElement(TidingsProvider, { client }, createElement(TidingsProvider, { client: plain }, createElement(Orders)));
}
