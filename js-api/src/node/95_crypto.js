// node:crypto - hashes and HMACs (createHash, createHmac, streaming
// update/digest), PBKDF2, random bytes and UUIDs, timingSafeEqual, and Web
// Crypto under Node's names. Ciphers, signing and key objects are not here:
// use crypto.subtle.
import { primordials } from "ext:core/mod.js";
import { op_node_hash, op_node_hmac, op_node_pbkdf2, op_node_scrypt } from "ext:core/ops";
import { encode } from "ext:outpost_node/00_encodings.js";
import { Buffer } from "node:buffer";

const { ArrayBufferIsView, MathFloor, RangeError, TypeError, Uint8Array } = primordials;

/** `data` (a string in `encoding`, or bytes) as a Uint8Array. */
function bytesOf(data, encoding) {
  if (typeof data === "string") return encode(data, encoding);
  if (ArrayBufferIsView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError('The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView.');
}

function concat(chunks) {
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function output(bytes, encoding) {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return encoding === undefined || encoding === "buffer" ? buffer : buffer.toString(encoding);
}

/** What createHash and createHmac share: chunks gathered, digested once. */
class Digester {
  #chunks = [];
  #done = false;

  update(data, encoding = undefined) {
    if (this.#done) throw new Error("Digest already called");
    this.#chunks.push(bytesOf(data, encoding));
    return this;
  }

  digest(encoding = undefined) {
    if (this.#done) throw new Error("Digest already called");
    this.#done = true;
    return output(this.finish(concat(this.#chunks)), encoding);
  }

  // Stream-style use (hash.write(...); hash.end(); hash.read()).
  write(data, encoding) {
    this.update(data, encoding);
    return true;
  }

  end(data = undefined, encoding = undefined) {
    if (data !== undefined && typeof data !== "function") this.update(data, encoding);
    this.result = this.digest();
    return this;
  }

  read() {
    return this.result ?? null;
  }
}

class Hash extends Digester {
  #algorithm;

  constructor(algorithm) {
    super();
    // Fails now, as Node does, for an unknown algorithm.
    op_node_hash(algorithm, new Uint8Array(0));
    this.#algorithm = algorithm;
  }

  finish(bytes) {
    return op_node_hash(this.#algorithm, bytes);
  }

  copy() {
    throw new Error("hash.copy() is not supported");
  }
}

class Hmac extends Digester {
  #algorithm;
  #key;

  constructor(algorithm, key) {
    super();
    this.#key = typeof key === "object" && key !== null && "export" in key ? key.export() : bytesOf(key, "utf8");
    op_node_hmac(algorithm, this.#key, new Uint8Array(0));
    this.#algorithm = algorithm;
  }

  finish(bytes) {
    return op_node_hmac(this.#algorithm, this.#key, bytes);
  }
}

function createHash(algorithm, _options = undefined) {
  return new Hash(algorithm);
}

function createHmac(algorithm, key, _options = undefined) {
  return new Hmac(algorithm, key);
}

/** One-shot `crypto.hash(algorithm, data, outputEncoding = "hex")`. */
function hash(algorithm, data, outputEncoding = "hex") {
  return output(op_node_hash(algorithm, bytesOf(data, "utf8")), outputEncoding);
}

function fillRandom(bytes) {
  for (let at = 0; at < bytes.length; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, at + 65536));
  }
  return bytes;
}

function randomBytes(size, callback = undefined) {
  if (typeof size !== "number" || size < 0 || size > 2 ** 31 - 1 || MathFloor(size) !== size) {
    throw new RangeError(`The value of "size" is out of range. Received ${size}`);
  }
  const buffer = fillRandom(Buffer.alloc(size));
  if (typeof callback === "function") {
    queueMicrotask(() => callback(null, buffer));
    return undefined;
  }
  return buffer;
}

function randomFillSync(buffer, offset = 0, size = undefined) {
  const view = new Uint8Array(buffer.buffer ?? buffer, (buffer.byteOffset ?? 0) + offset, size ?? (buffer.byteLength - offset));
  fillRandom(view);
  return buffer;
}

function randomInt(min, max = undefined, callback = undefined) {
  if (max === undefined || typeof max === "function") {
    callback = max;
    max = min;
    min = 0;
  }
  const range = max - min;
  if (!(range > 0) || range > 2 ** 48) throw new RangeError('The "max" argument must be greater than "min"');
  // Rejection sampling over 48 random bits keeps the result uniform.
  const limit = 2 ** 48 - (2 ** 48 % range);
  let value;
  do {
    const bytes = fillRandom(new Uint8Array(6));
    value = bytes.reduce((acc, byte) => acc * 256 + byte, 0);
  } while (value >= limit);
  const result = min + (value % range);
  if (typeof callback === "function") {
    queueMicrotask(() => callback(null, result));
    return undefined;
  }
  return result;
}

function randomUUID() {
  return crypto.randomUUID();
}

function timingSafeEqual(a, b) {
  const left = bytesOf(a);
  const right = bytesOf(b);
  if (left.byteLength !== right.byteLength) {
    throw new RangeError("Input buffers must have the same byte length");
  }
  return crypto.subtle.timingSafeEqual(left, right);
}

function pbkdf2Sync(password, salt, iterations, keylen, digest) {
  return output(op_node_pbkdf2(digest, bytesOf(password, "utf8"), bytesOf(salt, "utf8"), iterations, keylen));
}

function pbkdf2(password, salt, iterations, keylen, digest, callback) {
  let result;
  try {
    result = pbkdf2Sync(password, salt, iterations, keylen, digest);
  } catch (err) {
    queueMicrotask(() => callback(err));
    return;
  }
  queueMicrotask(() => callback(null, result));
}

/** `scryptSync(password, salt, keylen, { N, r, p, maxmem })`, Node's defaults. */
function scryptSync(password, salt, keylen, options = {}) {
  const n = options.N ?? options.cost ?? 16384;
  const r = options.r ?? options.blockSize ?? 8;
  const p = options.p ?? options.parallelization ?? 1;
  const maxmem = options.maxmem ?? 32 * 1024 * 1024;
  if (128 * n * r > maxmem) throw new RangeError("Invalid scrypt params: memory limit exceeded");
  return output(op_node_scrypt(bytesOf(password, "utf8"), bytesOf(salt, "utf8"), n, r, p, keylen));
}

function scrypt(password, salt, keylen, options, callback = undefined) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  let result;
  try {
    result = scryptSync(password, salt, keylen, options);
  } catch (err) {
    queueMicrotask(() => callback(err));
    return;
  }
  queueMicrotask(() => callback(null, result));
}

function randomFill(buffer, offset = 0, size = undefined, callback = undefined) {
  if (typeof offset === "function") {
    callback = offset;
    offset = 0;
  } else if (typeof size === "function") {
    callback = size;
    size = undefined;
  }
  randomFillSync(buffer, offset, size);
  queueMicrotask(() => callback(null, buffer));
}

function getHashes() {
  return ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512-256"];
}

function getRandomValues(array) {
  return crypto.getRandomValues(array);
}

// Web Crypto under Node's names, reaching the global crypto only when
// called: it cannot be touched while the snapshot is built, and touching
// it as each isolate starts costs a warm start about 0.2 ms.
const SUBTLE_METHODS = [
  "decrypt", "deriveBits", "deriveKey", "digest", "encrypt", "exportKey", "generateKey",
  "importKey", "sign", "timingSafeEqual", "unwrapKey", "verify", "wrapKey",
];
const subtle = {};
for (const name of SUBTLE_METHODS) {
  subtle[name] = (...args) => globalThis.crypto.subtle[name](...args);
}
const webcrypto = {
  subtle,
  getRandomValues: (array) => globalThis.crypto.getRandomValues(array),
  randomUUID: () => globalThis.crypto.randomUUID(),
};
const constants = {};

const nodeCrypto = {
  constants,
  createHash,
  createHmac,
  getHashes,
  getRandomValues,
  hash,
  pbkdf2,
  pbkdf2Sync,
  randomBytes,
  randomFill,
  randomFillSync,
  randomInt,
  randomUUID,
  scrypt,
  scryptSync,
  subtle,
  timingSafeEqual,
  webcrypto,
};

export default nodeCrypto;
export {
  constants,
  createHash,
  createHmac,
  getHashes,
  getRandomValues,
  hash,
  Hash,
  Hmac,
  pbkdf2,
  pbkdf2Sync,
  randomBytes,
  randomFill,
  randomFillSync,
  randomInt,
  randomUUID,
  scrypt,
  scryptSync,
  subtle,
  timingSafeEqual,
  webcrypto,
};
