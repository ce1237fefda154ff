// A scripted fake WebSocket server for the SDK's tests: every socket the client opens, what it sent, and answers.
import { withTimeout } from './helpers.mjs';

/**
 * A fake server side: every socket the client opens, with the messages it sent, and a way to answer. `answers`
 * maps a message type to a function (socket, message) that answers it instead of the default.
 */
export function fakeServer({ pingIntervalMs = 25000, answerAuth = true, expiresInMs = 3600000, answers = {}, protocolVersion = '1.1' } = {}) {
  const sockets = [];
  let notify = () => undefined;
  class FakeSocket {
    readyState = 0;
    sent = [];
    onopen = null;
    onmessage = null;
    onclose = null;
    onerror = null;
    constructor(url) {
      this.url = url;
      sockets.push(this);
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen?.({});
      });
    }
    send(text) {
      const message = JSON.parse(text);
      this.sent.push(message);
      notify();
      if (answers[message.type]) return void answers[message.type](this, message);
      const reply = (type, payload) =>
        queueMicrotask(() => this.onmessage?.({ data: JSON.stringify({ type, timestamp: Date.now(), requestId: message.requestId, payload }) }));
      if (message.type === 'connect') {
        reply('connect', {
          protocolVersion, sessionId: 's', authTimeoutMs: 10000,
          heartbeat: { pingIntervalMs, idleTimeoutMs: 60000 },
          limits: { maxMessageBytes: 65536, maxSubscriptions: 100, rateLimit: { messagesPerSecond: 50, burst: 100 } },
        });
      }
      if (message.type === 'auth' && answerAuth) reply('auth_success', { userId: 'u', roles: [], expiresAt: Date.now() + expiresInMs });
      if (message.type === 'ping') reply('pong', {});
    }
    push(type, payload) {
      this.onmessage?.({ data: JSON.stringify({ type, timestamp: Date.now(), payload }) });
    }
    /** Delivers messages ([type, payload, requestId?]) in one synchronous run, as ws emits what one TCP read held. */
    burst(messages) {
      queueMicrotask(() => {
        for (const [type, payload, requestId] of messages) {
          this.onmessage?.({ data: JSON.stringify({ type, timestamp: Date.now(), requestId, payload }) });
        }
      });
    }
    close() {
      this.readyState = 3;
    }
    /** The server closes the socket with `code`, after a `disconnect` as the protocol has it. */
    drop(code, reason, reconnect) {
      this.push('disconnect', { code, reason, reconnect });
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  }
  const sentOf = (type) => sockets.flatMap((s) => s.sent).filter((m) => m.type === type);
  const until = (check, what) =>
    withTimeout(new Promise((r) => { if (check()) return r(); notify = () => check() && r(); }), 5000, what);
  return { FakeSocket, sockets, sentOf, until };
}
