// Service bindings ([[services]]): env.AUTH.fetch() reaches another worker
// on the same node. The request goes through fetch(), so it is a
// subrequest of the request being handled, with deno_fetch's bodies and
// abort; the header below marks it for the host (runtime/src/ext/service),
// which runs it on the bound worker instead of sending it out.
import { core, primordials } from "ext:core/mod.js";
import { op_service_token } from "ext:core/ops";
import { currentRequestRid, fetch } from "ext:outpost_fetch/10_outbound.js";

const { ObjectFreeze, PromiseReject, TypeError } = primordials;
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

/** The `env` binding for service `binding`. */
export function serviceBinding(binding) {
  return ObjectFreeze({
    fetch(input, init = undefined) {
      return serviceFetch(binding, input, init);
    },
    connect() {
      throw new TypeError("connect() over a service binding is not supported");
    },
  });
}
