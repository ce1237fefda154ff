// Mistakes an app on typed resources must not compile, for test/typed.test.mjs: each line that ends with an `expect`
// comment is a mistake, and tsc must report exactly that error on that line, and nothing on any other line.
import { createClient } from 'tidings';
import type { Types } from './types.js';

export async function mistakes(): Promise<void> {
  const client = createClient<Types>({ url: 'ws://127.0.0.1:8080/ws', token: 't' });
  const order = await client.create('order', { productId: 'P1', quantity: '2', totalAmount: 1 }); // expect TS2322: Type 'string' is not assignable to type 'number'.
  await client.create('invoice', { total: 1 }); // expect TS2345: Argument of type '"invoice"' is not assignable to parameter of type 'TypeName<Types>'.
  void order.data.colour; // expect TS2339: Property 'colour' does not exist on type 'Order'.
  await client.create('order', { productId: 'P1', quantity: 1 }); // expect TS2741: Property 'totalAmount' is missing in type '{ productId: string; quantity: number; }' but required in type 'OrderCreate'.
  await client.update('order', order.id, { status: 'lost' }); // expect TS2322: Type '"lost"' is not assignable to type '"cancelled" | "paid" | "pending" | "shipped" | undefined'.
  await client.subscribe('invoice:1'); // expect TS2345: Argument of type '"invoice:1"' is not assignable to parameter
  const slim = await client.list('order', { fields: ['productId'] });
  void slim.items[0]?.data.quantity; // expect TS2339: Property 'quantity' does not exist on type 'Pick<Order, "productId">'.
  client.on('event', (event) => {
    if (event.resourceType === 'support_ticket') void event.data.productId; // expect TS2339: Property 'productId' does not exist on type 'Partial<SupportTicket> | SupportTicket'.
  });
  await client.batch([{ op: 'create', resourceType: 'order', data: { productId: 2, quantity: 1, totalAmount: 1 } }]); // expect TS2322: Type 'number' is not assignable to type 'string'.
  client.on('rejected', (error, write) => {
    if (write.kind === 'create' && write.resourceType === 'order') void write.data.title; // expect TS2339: Property 'title' does not exist on type 'OrderCreate'.
  });
}
