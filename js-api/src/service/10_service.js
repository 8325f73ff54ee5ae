// Service bindings ([[services]]): env.AUTH.fetch() reaches another worker
// on the same node. The request goes through fetch(), so it is a
// subrequest of the request being handled, with deno_fetch's bodies and
// abort; the header below marks it for the host (runtime/src/ext/service),
// which runs it on the bound worker instead of sending it out.
import { core, primordials } from "ext:core/mod.js";
import { op_service_rpc, op_service_token } from "ext:core/ops";
import { currentRequestRid, fetch, takeSubrequest } from "ext:outpost_fetch/10_outbound.js";

const { ObjectFreeze, ObjectHasOwn, PromiseReject, Proxy, TypeError } = primordials;
const { Request } = core.loadExtScript("ext:deno_fetch/23_request.js");

const SERVICE_HEADER = "x-outpost-service-binding";

// The isolate's secret: without it the host takes the header for a plain
// one, so neither a client nor worker code can forge a service call.
let token = null;

/**
 * A request to the worker bound as `binding`.
 * @param {string} binding
 * @param {RequestInfo} input
 * @param {RequestInit} [init]
 */
function serviceFetch(binding, input, init) {
  let request;
  try {
    request = new Request(input, init);
    token ??= op_service_token();
    // Names the calling request, whose cf-ray the callee's request takes.
    request.headers.set(SERVICE_HEADER, `${binding} ${currentRequestRid()} ${token}`);
  } catch (err) {
    return PromiseReject(err);
  }
  return fetch(request);
}

/**
 * Calls method `name` of the bound worker's entrypoint with `args`, which
 * travel V8-serialized (structured clone); the result comes back the same
 * way, and an error the method threw is rethrown here. A subrequest, as
 * fetch() is, but straight to the host: no Request or Response here.
 */
async function rpcCall(binding, name, args) {
  const refusal = takeSubrequest(`env.${binding}.${name}()`);
  if (refusal !== null) throw refusal;
  const { 0: threw, 1: bytes } = await op_service_rpc(
    binding,
    currentRequestRid(),
    encodeURIComponent(name),
    core.serialize(args),
  );
  const value = core.deserialize(bytes);
  if (threw) throw value;
  return value;
}

/**
 * The `env` binding for service `binding`: `fetch()` sends it a request;
 * any other method calls the method of that name on its entrypoint (RPC).
 */
export function serviceBinding(binding) {
  const methods = { __proto__: null };
  const stub = {
    fetch(input, init = undefined) {
      return serviceFetch(binding, input, init);
    },
    connect() {
      throw new TypeError("connect() over a service binding is not supported");
    },
  };
  return new Proxy(ObjectFreeze(stub), {
    get(target, name) {
      if (typeof name !== "string" || name === "then") return target[name];
      if (ObjectHasOwn(target, name)) return target[name];
      methods[name] ??= (...args) => rpcCall(binding, name, args);
      return methods[name];
    },
  });
}
