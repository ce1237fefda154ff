// The page the React bindings are tested on, bundled by test/render.test.mjs with esbuild: two components that
// subscribe to one topic, each of which a button unmounts, and a live collection, all under StrictMode; with
// `?presence=NAME`, a component present at `order` as NAME instead, which buttons make leave, join and unmount.
import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient, q } from 'tidings';
import { TidingsProvider, useClient, useLive, usePresence, useSubscription } from '../dist/index.js';

const params = new URLSearchParams(location.search);
const client = createClient({ url: params.get('ws'), token: params.get('token') });
void client.connect();

/** The events of the `order` topic, as the data attributes the test reads. */
function Feed({ name }) {
  const { events, last, status } = useSubscription('order');
  return (
    <section data-testid={name} data-status={status} data-count={events.length} data-last={last?.id ?? ''}>
      {name}: {events.length} events, the last about {last?.id ?? 'nothing'}
    </section>
  );
}

/** The pending orders; the query is written anew at each render, as an app would. */
function Pending() {
  const { items, status, error } = useLive('order', q.eq('data.status', 'pending'));
  return (
    <ul data-testid="pending" data-status={status} data-error={error?.code ?? ''}>
      {items.map((order) => (
        <li key={order.id} data-id={order.id} data-version={order.version}>
          {String(order.data.productId)}
        </li>
      ))}
    </ul>
  );
}

function App() {
  const [shown, setShown] = useState({ a: true, b: true });
  const connected = useClient() === client;
  return (
    <main data-provided={String(connected)}>
      <button type="button" onClick={() => setShown((s) => ({ ...s, a: false }))}>Unmount A</button>
      <button type="button" onClick={() => setShown((s) => ({ ...s, b: false }))}>Unmount B</button>
      {shown.a && <Feed name="a" />}
      {shown.b && <Feed name="b" />}
      <Pending />
    </main>
  );
}

/** Who is at `order`, this page's user among them while `here`; its state is written anew at each render, as an app would. */
function Present({ name }) {
  const [here, setHere] = useState(true);
  const { members, users, self, status, error } = usePresence('order', here ? { name } : undefined);
  return (
    <section data-testid="presence" data-status={status} data-users={[...users.keys()].sort().join(',')} data-self={self?.id ?? ''} data-error={error?.code ?? ''}>
      <button type="button" onClick={() => setHere((h) => !h)}>{here ? 'Leave' : 'Join'}</button>
      <ul>
        {members.map((m) => (
          <li key={m.id} data-user={m.userId} data-self={String(m.self)}>
            {String(m.state.name)}
          </li>
        ))}
      </ul>
    </section>
  );
}

function PresenceApp({ name }) {
  const [shown, setShown] = useState(true);
  return (
    <main>
      <button type="button" onClick={() => setShown(false)}>Unmount presence</button>
      {shown && <Present name={name} />}
    </main>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <TidingsProvider client={client}>{params.has('presence') ? <PresenceApp name={params.get('presence')} /> : <App />}</TidingsProvider>
  </StrictMode>,
);
