// JSON merge patches (RFC 7386) of a presence member's state: applying one, and finding the one between two states,
// so that a handle sends only what changed and keeps a copy the app cannot change under it.

/** A JSON object. */
type JsonObject = Record<string, unknown>;

/** Whether `value` is a JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A deep copy of a JSON value, so that the app changing its object later does not change what the handle wants. */
export function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** `target` with a JSON merge patch applied (RFC 7386): null removes a field, an object merges into an object. */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isObject(value)) out[key] = mergePatch(isObject(out[key]) ? out[key] : {}, value);
    else out[key] = copy(value);
  }
  return out;
}

/** The merge patch that turns `from` into `to`, or undefined when they are equal. */
export function diff(from: JsonObject, to: JsonObject): JsonObject | undefined {
  const patch: JsonObject = {};
  for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null;
  for (const [key, value] of Object.entries(to)) {
    const was = from[key];
    if (isObject(was) && isObject(value)) {
      const inner = diff(was, value);
      if (inner !== undefined) patch[key] = inner;
    } else if (!(key in from) || JSON.stringify(was) !== JSON.stringify(value)) {
      patch[key] = value;
    }
  }
  return Object.keys(patch).length === 0 ? undefined : patch;
}
