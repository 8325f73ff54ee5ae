// The Cache API within one request: put, match and delete on caches.default
// and named caches, the errors put raises, and what Cache-Control and Vary
// do. Expiry over time is covered by tests/integration/cache_api.rs.
import { area } from "./harness.js";

export const cache = area("cache");
const c = cache.check.bind(cache);

let serial = 0;
const fresh = () => `https://conformance.example/cache/${++serial}`;
const cacheable = (body, headers = {}) =>
  new Response(body, { headers: { "cache-control": "max-age=60", ...headers } });

async function rejects(promise) {
  try {
    await promise;
    return "resolved";
  } catch (err) {
    return err instanceof TypeError ? true : `${err.name}: ${err.message}`;
  }
}

c("caches.default is a Cache, and caches a CacheStorage", () =>
  caches instanceof CacheStorage && caches.default instanceof Cache);
c("put then match by URL string and by Request", async () => {
  const url = fresh();
  await caches.default.put(url, cacheable("stored"));
  const byString = await caches.default.match(url);
  const byRequest = await caches.default.match(new Request(url));
  return (await byString.text()) === "stored" && (await byRequest.text()) === "stored";
});
c("a hit carries cf-cache-status and age", async () => {
  const url = fresh();
  await caches.default.put(url, cacheable("x", { "x-custom": "kept" }));
  const hit = await caches.default.match(url);
  return hit.headers.get("cf-cache-status") === "HIT" && hit.headers.get("age") === "0" &&
    hit.headers.get("x-custom") === "kept";
});
c("a miss is undefined", async () => (await caches.default.match(fresh())) === undefined);
c("status and binary bodies are kept", async () => {
  const url = fresh();
  await caches.default.put(url, new Response(new Uint8Array([0, 255, 7]), {
    status: 404,
    headers: { "cache-control": "s-maxage=60" },
  }));
  const hit = await caches.default.match(url);
  const bytes = new Uint8Array(await hit.arrayBuffer());
  return hit.status === 404 && bytes.join() === "0,255,7";
});
c("delete removes, and reports whether there was an entry", async () => {
  const url = fresh();
  await caches.default.put(url, cacheable("x"));
  const first = await caches.default.delete(url);
  const second = await caches.default.delete(url);
  return first === true && second === false && (await caches.default.match(url)) === undefined;
});
c("named caches are apart from each other and from the default", async () => {
  const url = fresh();
  const one = await caches.open("one");
  await one.put(url, cacheable("in one"));
  const two = await caches.open("two");
  return (await two.match(url)) === undefined && (await caches.default.match(url)) === undefined &&
    (await (await caches.open("one")).match(url).then((r) => r.text())) === "in one";
});
c("match ignores non-GET requests unless ignoreMethod", async () => {
  const url = fresh();
  await caches.default.put(url, cacheable("x"));
  const post = new Request(url, { method: "POST" });
  return (await caches.default.match(post)) === undefined &&
    (await caches.default.match(post, { ignoreMethod: true })) !== undefined;
});
c("put refuses a non-GET request", () =>
  rejects(caches.default.put(new Request(fresh(), { method: "POST" }), cacheable("x"))));
c("put refuses a 206", () =>
  rejects(caches.default.put(fresh(), new Response("x", { status: 206, headers: { "cache-control": "max-age=60" } }))));
c("put refuses Vary: *", () => rejects(caches.default.put(fresh(), cacheable("x", { vary: "*" }))));
c("put refuses a used body", async () => {
  const response = cacheable("x");
  await response.text();
  return rejects(caches.default.put(fresh(), response));
});
c("no-store and Set-Cookie responses are not stored", async () => {
  const a = fresh();
  const b = fresh();
  await caches.default.put(a, new Response("x", { headers: { "cache-control": "no-store, max-age=60" } }));
  await caches.default.put(b, cacheable("x", { "set-cookie": "a=b" }));
  return (await caches.default.match(a)) === undefined && (await caches.default.match(b)) === undefined;
});
c("Vary matches on the named request headers", async () => {
  const url = fresh();
  await caches.default.put(new Request(url, { headers: { "accept-language": "en" } }), cacheable("en", { vary: "Accept-Language" }));
  const en = await caches.default.match(new Request(url, { headers: { "accept-language": "en" } }));
  const fr = await caches.default.match(new Request(url, { headers: { "accept-language": "fr" } }));
  return en !== undefined && fr === undefined;
});
c("the URL's fragment is ignored", async () => {
  const url = fresh();
  await caches.default.put(`${url}#one`, cacheable("x"));
  return (await caches.default.match(`${url}#two`)) !== undefined;
});
c("Expires gives a lifetime when max-age is absent", async () => {
  const url = fresh();
  const stale = fresh();
  const inAMinute = new Date(Date.now() + 60_000).toUTCString();
  await caches.default.put(url, new Response("x", { headers: { expires: inAMinute } }));
  await caches.default.put(stale, new Response("x", { headers: { expires: "0" } }));
  return (await caches.default.match(url)) !== undefined && (await caches.default.match(stale)) === undefined;
});
c("If-None-Match naming the stored ETag gets a 304", async () => {
  const url = fresh();
  await caches.default.put(url, cacheable("body", { etag: '"v1"' }));
  const same = await caches.default.match(new Request(url, { headers: { "if-none-match": 'W/"v1"' } }));
  const other = await caches.default.match(new Request(url, { headers: { "if-none-match": '"v2"' } }));
  return same.status === 304 && same.body === null && other.status === 200 && (await other.text()) === "body";
});
