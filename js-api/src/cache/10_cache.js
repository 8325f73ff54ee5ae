// The Cache API as workers know it: `caches.default` and `caches.open(name)`,
// each with match, put and delete. Entries live in the node's response cache
// (runtime/src/ext/cache), per worker, and expire after their s-maxage or
// max-age.
import { core, primordials } from "ext:core/mod.js";
import { op_cache_delete, op_cache_match, op_cache_put } from "ext:core/ops";

const {
  ArrayPrototypePush,
  ObjectPrototypeIsPrototypeOf,
  SafeMap,
  MapPrototypeGet,
  MapPrototypeSet,
  String,
  StringPrototypeIncludes,
  StringPrototypeSplit,
  StringPrototypeTrim,
  TypeError,
  Uint8Array,
} = primordials;
const { Request, RequestPrototype } = core.loadExtScript("ext:deno_fetch/23_request.js");
const { Response, ResponsePrototype } = core.loadExtScript("ext:deno_fetch/23_response.js");

function asRequest(request) {
  return ObjectPrototypeIsPrototypeOf(RequestPrototype, request) ? request : new Request(request);
}

function headerPairs(headers) {
  const pairs = [];
  for (const pair of headers) ArrayPrototypePush(pairs, [pair[0], pair[1]]);
  return pairs;
}

/** The URL a request is cached under: without its fragment. */
function cacheUrl(request) {
  return StringPrototypeSplit(request.url, "#")[0];
}

class Cache {
  #name;

  constructor(name) {
    this.#name = name;
  }

  /** The stored response for `request`, or undefined. */
  async match(request, options = undefined) {
    request = asRequest(request);
    if (request.method !== "GET" && options?.ignoreMethod !== true) return undefined;
    const hit = op_cache_match({ cache: this.#name, url: cacheUrl(request), headers: headerPairs(request.headers) });
    if (hit === null) return undefined;
    // A 304 (the request's If-None-Match named the stored ETag) has no body.
    const body = hit.status === 304 ? null : new Uint8Array(hit.body);
    return new Response(body, { status: hit.status, headers: hit.headers });
  }

  /**
   * Stores `response` for `request`. Its Cache-Control decides: `s-maxage`
   * or `max-age` give its lifetime; `no-store`, `no-cache`, `private`, a
   * `Set-Cookie` or no lifetime at all keep it out (quietly, as in Workers).
   */
  async put(request, response) {
    request = asRequest(request);
    if (!ObjectPrototypeIsPrototypeOf(ResponsePrototype, response)) {
      throw new TypeError("Cache.put expects a Response");
    }
    if (request.method !== "GET") throw new TypeError("Cannot cache the response to a non-GET request");
    if (response.status === 206) throw new TypeError("Cannot cache a partial (206) response");
    const vary = response.headers.get("vary");
    if (vary !== null && StringPrototypeIncludes(vary, "*")) {
      for (const name of StringPrototypeSplit(vary, ",")) {
        if (StringPrototypeTrim(name) === "*") throw new TypeError("Cannot cache a response with 'Vary: *'");
      }
    }
    if (response.bodyUsed) throw new TypeError("The Response's body has already been used");
    const body = new Uint8Array(await response.arrayBuffer());
    op_cache_put(
      { cache: this.#name, url: cacheUrl(request), headers: headerPairs(request.headers) },
      { status: response.status, headers: headerPairs(response.headers) },
      body,
    );
  }

  /** Removes what is stored for `request`; resolves whether there was anything. */
  async delete(request, options = undefined) {
    request = asRequest(request);
    if (request.method !== "GET" && options?.ignoreMethod !== true) return false;
    return op_cache_delete({ cache: this.#name, url: cacheUrl(request), headers: [] });
  }
}

class CacheStorage {
  #default = new Cache(null);
  #named = new SafeMap();

  /** The worker's default cache. */
  get default() {
    return this.#default;
  }

  /** The cache called `name`, apart from the default one. */
  async open(name) {
    name = String(name);
    let cache = MapPrototypeGet(this.#named, name);
    if (cache === undefined) {
      cache = new Cache(name);
      MapPrototypeSet(this.#named, name, cache);
    }
    return cache;
  }
}

const caches = new CacheStorage();

export { Cache, caches, CacheStorage };
