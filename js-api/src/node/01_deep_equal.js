// Node's deep equality, shared by node:util (isDeepStrictEqual) and
// node:assert (deepEqual, deepStrictEqual and their negations).
import { primordials } from "ext:core/mod.js";

const {
  ArrayBufferIsView,
  Error,
  NumberIsNaN,
  ObjectGetPrototypeOf,
  ObjectIs,
  ObjectKeys,
  ObjectPrototypeHasOwnProperty,
  ObjectPrototypeToString,
  Uint8Array,
} = primordials;

const tag = (value) => ObjectPrototypeToString(value);
const BOXED = ["[object Boolean]", "[object Number]", "[object String]", "[object Symbol]", "[object BigInt]"];
const isBoxedPrimitive = (v) => typeof v === "object" && v !== null && BOXED.includes(tag(v));

/**
 * Node's deep equality: `strict` compares primitives with Object.is and
 * requires the same prototypes; loose compares primitives with ==.
 */
function deepEqual(a, b, strict, seen = new Map()) {
  if (strict ? ObjectIs(a, b) : a == b || (NumberIsNaN(a) && NumberIsNaN(b))) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return false;
  }
  if (strict && ObjectGetPrototypeOf(a) !== ObjectGetPrototypeOf(b)) return false;
  if (tag(a) !== tag(b)) return false;
  const pair = seen.get(a);
  if (pair !== undefined && pair === b) return true;
  seen.set(a, b);
  if (a instanceof Date) return a.getTime() === b.getTime();
  if (a instanceof RegExp) return a.source === b.source && a.flags === b.flags && a.lastIndex === b.lastIndex;
  if (a instanceof Error && (a.message !== b.message || a.name !== b.name)) return false;
  if (isBoxedPrimitive(a)) return ObjectIs(a.valueOf(), b.valueOf());
  if (ArrayBufferIsView(a)) {
    if (a.byteLength !== b.byteLength) return false;
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  }
  if (a instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [key, value] of a) {
      if (b.has(key)) {
        if (!deepEqual(value, b.get(key), strict, seen)) return false;
      } else {
        let found = false;
        for (const [otherKey, otherValue] of b) {
          if (deepEqual(key, otherKey, strict, seen) && deepEqual(value, otherValue, strict, seen)) {
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
    }
  } else if (a instanceof Set) {
    if (a.size !== b.size) return false;
    for (const value of a) {
      if (b.has(value)) continue;
      if (typeof value !== "object" || value === null) return false;
      let found = false;
      for (const other of b) {
        if (deepEqual(value, other, strict, seen)) {
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
  }
  const keysA = ObjectKeys(a);
  const keysB = ObjectKeys(b);
  if (keysA.length !== keysB.length) return false;
  for (const key of keysA) {
    if (!ObjectPrototypeHasOwnProperty(b, key)) return false;
    if (!deepEqual(a[key], b[key], strict, seen)) return false;
  }
  return true;
}

export { deepEqual };
