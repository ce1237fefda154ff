// RequestIds: version 4 UUIDs, made where crypto.randomUUID is missing too (a page served over plain HTTP, React
// Native).

/** The parts of Web Crypto that the ids use; either may be missing. */
interface CryptoLike {
  randomUUID?: () => string;
  getRandomValues?: <T extends ArrayBufferView | null>(array: T) => T;
}

/**
 * A version 4 UUID. Browsers define crypto.randomUUID only in secure contexts (HTTPS and localhost), and React
 * Native has no crypto unless a polyfill adds it, so this falls back to crypto.getRandomValues, and past that to
 * Math.random. A requestId must be unique among the requests of one user within the server's dedup window (a
 * create's is its idempotency key), not secret: Math.random, though predictable, is enough for that.
 */
export function randomId(): string {
  const crypto = (globalThis as { crypto?: CryptoLike }).crypto;
  if (typeof crypto?.randomUUID === 'function') return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (typeof crypto?.getRandomValues === 'function') crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
  // RFC 9562, section 5.4: the version (4) in the high nibble of byte 6, the variant (10) in the top bits of byte 8.
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
