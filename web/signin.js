// Sign-in for the orders board: the dev sign-in of an unconfigured server, or a pasted token, kept for this tab.

const STORAGE_KEY = 'tidings.sign-in';

/** Whether the server signs anyone in (`GET /auth/dev-token` answers 204 only on an unconfigured loopback server). */
export async function devSignInOffered() {
  try {
    return (await fetch('/auth/dev-token')).status === 204;
  } catch {
    return false;
  }
}

/** A sign-in through the dev endpoint: every token comes fresh from `POST /auth/dev-token`. */
export function devSignIn(user, admin) {
  return { kind: 'dev', user, roles: admin ? ['admin'] : [] };
}

/** A sign-in with a token the user pasted. Throws when the text is not a JWT with a `sub`. */
export function tokenSignIn(token) {
  const claims = readClaims(token);
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new Error('the token has no `sub` (user id) claim');
  // An expired token would be refused at every reconnection attempt; say so before trying.
  if (typeof claims.exp === 'number' && claims.exp * 1000 <= Date.now()) throw new Error('the token has expired');
  const roles = Array.isArray(claims.roles) ? claims.roles.filter((r) => typeof r === 'string') : [];
  return { kind: 'token', token, user: claims.sub, roles };
}

/** The SDK's getToken for a sign-in. The SDK asks it before every authentication and before expiry. */
export function tokenSource(signIn) {
  if (signIn.kind === 'token') return () => signIn.token;
  return async () => {
    const response = await fetch('/auth/dev-token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: signIn.user, roles: signIn.roles }),
    });
    if (!response.ok) throw new Error((await response.text()).trim() || `dev sign-in answered ${response.status}`);
    return (await response.json()).token;
  };
}

/** Keeps the sign-in for this tab, so that a reload signs in again; each tab can be a different user. */
export function remember(signIn) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(signIn));
}

/** The sign-in this tab remembers, if any. */
export function remembered() {
  try {
    const signIn = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    return signIn && (signIn.kind === 'dev' || signIn.kind === 'token') ? signIn : null;
  } catch {
    return null;
  }
}

export function forget() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** A JWT's claims, decoded without verifying: only to show who is signed in. The server verifies the token. */
export function readClaims(token) {
  const part = token.split('.')[1];
  if (part === undefined) throw new Error('this is not a JWT: it has no claims part');
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
  try {
    const bytes = Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error('this is not a JWT: its claims are not base64url JSON');
  }
}
