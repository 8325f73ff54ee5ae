// Workers KV bindings: `env.MY_KV` is a KVNamespace with get, getWithMetadata,
// put, delete and list. The backend (the edge's cache in front of the control
// plane, or the dev store) is the embedder's; the ops (runtime/src/ext/kv)
// check keys, sizes, metadata and expiry before anything is written.
import { core, primordials } from "ext:core/mod.js";
import { op_kv_delete, op_kv_get, op_kv_list, op_kv_put } from "ext:core/ops";

const {
  ArrayBufferIsView,
  ArrayBufferPrototypeGetByteLength,
  ArrayIsArray,
  ArrayPrototypeMap,
  ArrayPrototypePush,
  JSONParse,
  JSONStringify,
  MathFloor,
  Number,
  NumberIsFinite,
  ObjectPrototypeIsPrototypeOf,
  PromiseAll,
  RangeError,
  Map,
  MapPrototypeSet,
  String,
  TypeError,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeSet,
  TypedArrayPrototypeSlice,
  Uint8Array,
  ArrayBufferPrototype,
} = primordials;
const { ReadableStream, ReadableStreamPrototype } = core.loadExtScript("ext:deno_web/06_streams.js");

// The same limits the ops check, so a stream is not read past them.
const MAX_VALUE_BYTES = 25 * 1024 * 1024;
const MIN_CACHE_TTL = 30;
const MAX_BULK_KEYS = 100;
const VALUE_TYPES = ["text", "json", "arrayBuffer", "stream"];

function readOptions(options) {
  if (options === undefined || options === null) return { type: "text", cacheTtl: undefined };
  if (typeof options === "string") return { type: options, cacheTtl: undefined };
  if (typeof options !== "object") {
    throw new TypeError("KV get() options must be a type name or an object");
  }
  const type = options.type === undefined ? "text" : options.type;
  let cacheTtl;
  if (options.cacheTtl !== undefined) {
    cacheTtl = Number(options.cacheTtl);
    if (!NumberIsFinite(cacheTtl) || cacheTtl < MIN_CACHE_TTL) {
      throw new RangeError(`KV cacheTtl must be at least ${MIN_CACHE_TTL} seconds, not ${options.cacheTtl}`);
    }
    cacheTtl = MathFloor(cacheTtl);
  }
  return { type, cacheTtl };
}

function checkType(type, allowed) {
  for (let i = 0; i < allowed.length; i++) if (allowed[i] === type) return;
  throw new TypeError(`Unknown KV value type "${type}": use ${allowed.join(", ")}`);
}

function convert(bytes, type) {
  switch (type) {
    case "text":
      return core.decode(bytes);
    case "json":
      return JSONParse(core.decode(bytes));
    case "arrayBuffer": {
      const buffer = TypedArrayPrototypeGetBuffer(bytes);
      const whole = TypedArrayPrototypeGetByteOffset(bytes) === 0 &&
        TypedArrayPrototypeGetByteLength(bytes) === ArrayBufferPrototypeGetByteLength(buffer);
      return whole ? buffer : TypedArrayPrototypeGetBuffer(TypedArrayPrototypeSlice(bytes));
    }
    default:
      return new ReadableStream({
        start(controller) {
          if (TypedArrayPrototypeGetByteLength(bytes) > 0) controller.enqueue(bytes);
          controller.close();
        },
      });
  }
}

function parseMetadata(text) {
  return text === null || text === undefined ? null : JSONParse(text);
}

/** Seconds given as a number (or numeric string), floored. */
function seconds(name, value) {
  if (value === undefined || value === null) return undefined;
  const n = Number(value);
  if (!NumberIsFinite(n) || n < 0) {
    throw new RangeError(`KV ${name} must be a non-negative number of seconds, not ${value}`);
  }
  return MathFloor(n);
}

async function readStream(stream) {
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (!ArrayBufferIsView(value)) {
      reader.cancel();
      throw new TypeError("a KV value stream must yield Uint8Array chunks");
    }
    total += value.byteLength;
    if (total > MAX_VALUE_BYTES) {
      reader.cancel();
      throw new RangeError(`KV value of over ${MAX_VALUE_BYTES} bytes is over the limit`);
    }
    ArrayPrototypePush(chunks, new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (let i = 0; i < chunks.length; i++) {
    TypedArrayPrototypeSet(bytes, chunks[i], offset);
    offset += chunks[i].byteLength;
  }
  return bytes;
}

async function valueBytes(value) {
  if (typeof value === "string") return core.encode(value);
  if (ObjectPrototypeIsPrototypeOf(ArrayBufferPrototype, value)) return new Uint8Array(value);
  if (ArrayBufferIsView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (ObjectPrototypeIsPrototypeOf(ReadableStreamPrototype, value)) return await readStream(value);
  throw new TypeError(
    "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values",
  );
}

class KVNamespace {
  #id;

  constructor(id) {
    this.#id = id;
  }

  async #read(key, options, withMetadata) {
    const { type, cacheTtl } = readOptions(options);
    if (ArrayIsArray(key)) {
      checkType(type, ["text", "json"]);
      if (key.length > MAX_BULK_KEYS) {
        throw new RangeError(`KV get() takes at most ${MAX_BULK_KEYS} keys at once, not ${key.length}`);
      }
      const keys = ArrayPrototypeMap(key, (k) => String(k));
      const hits = await PromiseAll(ArrayPrototypeMap(keys, (k) => op_kv_get(this.#id, k, cacheTtl)));
      // A plain Map: the worker's own code gets it (a SafeMap is no Map).
      const result = new Map();
      for (let i = 0; i < keys.length; i++) {
        const hit = hits[i];
        const value = hit === null ? null : convert(hit.value, type);
        MapPrototypeSet(
          result,
          keys[i],
          withMetadata ? { value, metadata: hit === null ? null : parseMetadata(hit.metadata) } : value,
        );
      }
      return result;
    }
    checkType(type, VALUE_TYPES);
    const hit = await op_kv_get(this.#id, String(key), cacheTtl);
    const value = hit === null ? null : convert(hit.value, type);
    if (!withMetadata) return value;
    return {
      value,
      metadata: hit === null ? null : parseMetadata(hit.metadata),
      cacheStatus: hit === null ? null : hit.cacheStatus,
    };
  }

  get(key, options) {
    return this.#read(key, options, false);
  }

  getWithMetadata(key, options) {
    return this.#read(key, options, true);
  }

  async put(key, value, options = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("KV put() options must be an object");
    }
    let metadata;
    if (options.metadata !== undefined) {
      try {
        metadata = JSONStringify(options.metadata);
      } catch (err) {
        throw new TypeError(`KV metadata must serialise to JSON: ${err.message}`);
      }
    }
    const bytes = await valueBytes(value);
    await op_kv_put(this.#id, String(key), bytes, {
      expiration: seconds("expiration", options.expiration),
      expirationTtl: seconds("expirationTtl", options.expirationTtl),
      metadata,
    });
  }

  async delete(key) {
    await op_kv_delete(this.#id, String(key));
  }

  async list(options = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("KV list() options must be an object");
    }
    const limit = options.limit === undefined ? 1000 : Number(options.limit);
    if (!NumberIsFinite(limit)) throw new RangeError(`KV list() limit must be a number, not ${options.limit}`);
    const page = await op_kv_list(this.#id, {
      prefix: options.prefix === undefined || options.prefix === null ? "" : String(options.prefix),
      limit: MathFloor(limit) < 0 ? 0 : MathFloor(limit),
      cursor: options.cursor === undefined || options.cursor === null ? undefined : String(options.cursor),
    });
    const keys = ArrayPrototypeMap(page.keys, (k) => {
      const key = { name: k.name };
      if (k.expiration !== undefined) key.expiration = k.expiration;
      if (k.metadata !== undefined) key.metadata = parseMetadata(k.metadata);
      return key;
    });
    const result = { keys, list_complete: page.list_complete, cacheStatus: null };
    if (page.cursor !== undefined) result.cursor = page.cursor;
    return result;
  }
}

/** The binding a worker sees for namespace `id`. */
function kvNamespace(id) {
  return new KVNamespace(id);
}

export { kvNamespace };
