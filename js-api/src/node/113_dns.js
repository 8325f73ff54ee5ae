// node:dns - lookup, and resolve/resolve4/resolve6 for A and AAAA records,
// through the system resolver under the worker's outbound policy
// (op_node_dns_lookup): a worker learns only addresses it may connect to.
// Other record types and reverse lookups are not offered (ENOTIMP).
import { primordials } from "ext:core/mod.js";
import { op_node_dns_lookup } from "ext:core/ops";
import { isIP } from "node:net";

const { Error, Promise, PromiseResolve, TypeError } = primordials;

function notImplemented(what) {
  const err = new Error(`dns.${what} is not available in a worker: only A and AAAA lookups are`);
  err.code = "ENOTIMP";
  return err;
}

/** The addresses of `hostname` as [{ address, family }], in the resolver's order. */
async function addressesOf(hostname, family = 0) {
  if (typeof hostname !== "string" || hostname === "") {
    throw new TypeError('The "hostname" argument must be a non-empty string');
  }
  const literal = isIP(hostname);
  const found = literal !== 0 ? [hostname] : await op_node_dns_lookup(hostname);
  const all = found.map((address) => ({ address, family: isIP(address) }));
  const wanted = family === 0 ? all : all.filter((entry) => entry.family === family);
  if (wanted.length === 0) {
    const err = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
    err.code = "ENOTFOUND";
    err.hostname = hostname;
    throw err;
  }
  return wanted;
}

function familyOf(options) {
  const family = typeof options === "number" ? options : options?.family;
  if (family === "IPv4") return 4;
  if (family === "IPv6") return 6;
  return family ?? 0;
}

/** Resolves as `lookup` does in dns.promises: { address, family } or all of them. */
async function lookupPromise(hostname, options = undefined) {
  const found = await addressesOf(hostname, familyOf(options));
  return options?.all ? found : found[0];
}

function lookup(hostname, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = undefined;
  }
  lookupPromise(hostname, options).then(
    (found) => (options?.all ? callback(null, found) : callback(null, found.address, found.family)),
    (err) => callback(err),
  );
}

async function resolvePromise(hostname, rrtype = "A") {
  if (rrtype !== "A" && rrtype !== "AAAA") throw notImplemented(`resolve(${rrtype})`);
  const found = await addressesOf(hostname, rrtype === "A" ? 4 : 6);
  return found.map((entry) => entry.address);
}

function withCallback(promised) {
  return (...args) => {
    const callback = args.pop();
    promised(...args).then((result) => callback(null, result), (err) => callback(err));
  };
}

const resolve4Promise = (hostname) => resolvePromise(hostname, "A");
const resolve6Promise = (hostname) => resolvePromise(hostname, "AAAA");
const reversePromise = () => Promise.reject(notImplemented("reverse"));

const resolve = withCallback(resolvePromise);
const resolve4 = withCallback(resolve4Promise);
const resolve6 = withCallback(resolve6Promise);
const reverse = withCallback(reversePromise);

const promises = {
  lookup: lookupPromise,
  resolve: resolvePromise,
  resolve4: resolve4Promise,
  resolve6: resolve6Promise,
  reverse: reversePromise,
  getServers: () => [],
};

const getServers = () => [];
const setServers = () => PromiseResolve();
const NOTFOUND = "ENOTFOUND";
const NOTIMP = "ENOTIMP";
const REFUSED = "EREFUSED";

export default { getServers, lookup, NOTFOUND, NOTIMP, promises, REFUSED, resolve, resolve4, resolve6, reverse, setServers };
export { getServers, lookup, NOTFOUND, NOTIMP, promises, REFUSED, resolve, resolve4, resolve6, reverse, setServers };
