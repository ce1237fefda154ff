// The design notes' flow in a few lines: one client creates an order, another receives the order_created event.
import WebSocket from 'ws';
import { createClient } from '../dist/index.js';

const [url, aliceToken, adminToken] = process.argv.slice(2);
const admin = createClient({ url, token: adminToken, WebSocket });
const alice = createClient({ url, token: aliceToken, WebSocket });
await Promise.all([admin.connect(), alice.connect()]);
const received = new Promise((resolve) => admin.on('event', resolve));
await admin.subscribe('order');
const order = await alice.create('order', { productId: 'P12345', quantity: 2, totalAmount: 99.99 });
const event = await received;
console.log(`${event.eventType} ${event.id} ${event.data.status} (created ${order.id})`);
admin.close();
alice.close();
