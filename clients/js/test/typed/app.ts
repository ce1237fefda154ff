// A strict TypeScript app on typed resources, compiled by test/typed.test.mjs beside the types that `tidings types`
// wrote from tidings.toml: every request, event, handle, live collection and batch result is typed, without a cast.
import { createClient, memoryOutbox, q, type Resource, type TidingsEvent, type TypedResource } from 'tidings';
import type { Order, OrderCreate, SupportTicket, Types } from './types.js';

export async function app(): Promise<string[]> {
  const client = createClient<Types>({ url: 'ws://127.0.0.1:8080/ws', token: 't' });
  const seen: string[] = [];

  // Requests take each type's create input and partial patches, and resolve with its data as delivered.
  const input: OrderCreate = { productId: 'P1', quantity: 2, totalAmount: 9.5 };
  const order = await client.create('order', input);
  const status: Order['status'] = order.data.status;
  const kind: 'order' = order.resourceType;
  const again: TypedResource<'order', Order> = await client.read('order', order.id);
  const page = await client.list('order', { filter: { status: 'pending' }, orderBy: ['-totalAmount', 'createdAt'], limit: 10 });
  const quantities: number[] = page.items.map((item) => item.data.quantity);
  const slim = await client.list('order', { fields: ['productId', 'status'] });
  const products: string[] = slim.items.map((item) => `${item.data.productId} ${item.data.status}`);
  const updated = await client.update('order', order.id, { quantity: 3, note: null }, { expectedVersion: order.version });
  const gone = await client.delete('order', updated.id);
  const goneKind: 'order' = gone.resourceType;
  const ticket = await client.create('support_ticket', { title: 'Help', customer: { name: 'Ann' } });
  const escalated: boolean = ticket.data.escalated;
  await client.update('support_ticket', ticket.id, { customer: { region: 'north' } });
  seen.push(status, kind, again.data.productId, String(quantities), String(products), goneKind, String(escalated));

  // The client's events are a union that resourceType tells apart, then eventType; what the server always sends is there.
  client.on('event', (event) => {
    const who: string = event.actor.id;
    switch (event.resourceType) {
      case 'order': {
        const seq: number = event.seq;
        if (event.eventType !== 'order_left') seen.push(`${who} ${seq} ${event.data.productId} ${event.data.totalAmount}`);
        else seen.push(`${event.reason} ${event.data.productId ?? 'hidden'}`);
        break;
      }
      case 'support_ticket':
        if (event.eventType === 'support_ticket_updated') seen.push(`${event.data.title} ${String(event.changed)} ${event.previousData?.priority}`);
        break;
      case 'presence':
        seen.push(`${event.ownerId} ${event.data.topic}`);
        break;
      default: {
        const none: never = event;
        void none;
      }
    }
  });
  client.on('gap', (gap) => seen.push(...(gap.items ?? []).map((item) => item.resourceType)));

  // A handle of a resource topic hears that type's events only; its async iteration too.
  const handle = await client.subscribe(`order:${order.id}`);
  handle.on('event', (event) => seen.push(`${event.id} ${event.version} ${event.seq} ${event.eventType}`));
  for await (const event of handle) if (event.eventType === 'order_deleted') seen.push(event.data.status);
  const tickets = await client.subscribe('support_ticket', { snapshot: true });
  const titles: string[] = (tickets.items ?? []).map((item) => item.data.title);
  const people = await client.subscribe('presence:order');
  people.on('event', (event) => seen.push(JSON.stringify(event.data.state)));

  // A live collection holds the type's resources.
  const live = client.live('order', q.eq('data.status', 'pending'), { compare: (a, b) => a.data.totalAmount - b.data.totalAmount });
  const cheapest: Order | undefined = live.getSnapshot()[0]?.data;
  const held: TypedResource<'order', Order> | undefined = live.get(order.id);

  // A batch's results are typed by each operation's kind and type.
  const [made, changed, deleted] = await client.batch([
    { op: 'create', resourceType: 'support_ticket', data: { title: 'Batch' } },
    { op: 'update', resourceType: 'order', id: order.id, patch: { quantity: 4 } },
    { op: 'delete', resourceType: 'order', id: order.id },
  ]);
  const ticketData: SupportTicket = made.data;
  seen.push(ticketData.title, String(changed.data.quantity), String(deleted.deletedAt), String(titles), String(cheapest), String(held));

  // With an outbox, a live collection's items say which writes are not confirmed yet, and the outbox's writes and
  // events are typed per type: a create's data is its create input, an update's a patch of its data.
  const offline = createClient<Types>({ url: 'ws://127.0.0.1:8080/ws', token: 't', outbox: memoryOutbox() });
  const drafts = offline.live('order', undefined, { compare: (a, b) => Number(a.pending ?? false) - Number(b.pending ?? false) });
  const unsaved: TypedResource<'order', Order>[] = drafts.getSnapshot().filter((item) => item.pending === true);
  const waiting: string[] = offline.pendingWrites().map((write) => (write.kind === 'create' && write.resourceType === 'order' ? write.data.productId : write.id));
  offline.on('rejected', (error, write) => seen.push(`${error.code} ${write.kind === 'update' && write.resourceType === 'order' ? write.data.quantity : write.kind}`));
  offline.on('confirmed', (write, result) => seen.push(`${write.resourceType} ${write.id} ${result.id}`));
  offline.on('outbox', (writes) => seen.push(String(writes.length)));
  seen.push(String(unsaved.length), String(waiting), String(drafts.get(order.id)?.pending));

  // A client made without types is as it always was.
  const plain = createClient({ url: 'ws://127.0.0.1:8080/ws', token: 't' });
  const anything: Resource = await plain.create('whatever', { note: 1 });
  plain.on('event', (event: TidingsEvent) => seen.push(`${event.eventType} ${event.seq ?? ''}`));
  const untypedHandle = await plain.subscribe('whatever:1');
  untypedHandle.on('event', (event: TidingsEvent) => seen.push(String(event.data['note'])));
  seen.push(anything.id);
  return seen;
}
