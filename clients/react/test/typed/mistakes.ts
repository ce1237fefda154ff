// Mistakes in the typed hooks that must not compile, for test/typed.test.mjs: each line that ends with an `expect`
// comment must fail with that error, and no other line may fail.
import { createHooks } from 'tidings-react';
import type { Types } from './types.js';

const { useLive, useSubscription } = createHooks<Types>();

export function Wrong(): string {
  const live = useLive('invoice'); // expect TS2345: Argument of type '"invoice"' is not assignable to parameter of type '"order"'.
  const orders = useLive('order');
  const colour = orders.items[0]?.data.colour; // expect TS2339: Property 'colour' does not exist on type 'Order'.
  const feed = useSubscription('order', { onEvent: (event) => void event.data.title }); // expect TS2339: Property 'title' does not exist on type
  return `${live.status} ${colour} ${feed.status}`;
}
