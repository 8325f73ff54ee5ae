// Outbound fetch(): deno_fetch's implementation (redirects, bodies, abort),
// counted against the incoming request it is made for. The host checks each
// hop's address (op_fetch, swapped for Outpost's checked version in
// runtime/src/ext/fetch); this file enforces the per-request subrequest limit.
import { core, primordials } from "ext:core/mod.js";
import { op_fetch_subrequest_limit } from "ext:core/ops";

const { Error, PromiseReject, ReflectApply, TypeError } = primordials;
const denoFetch = core.loadExtScript("ext:deno_fetch/26_fetch.js");

/**
 * What one incoming request has used. The serve path makes one per request
 * and sets it as the async context of the handler, so it follows the
 * handler's promises, timers and waitUntil work.
 */
class RequestScope {
  subrequests = 0;
  /** How many it may make, read from the host on the first. */
  subrequestLimit = -1;
  /** @param {number} rid the request's resource id, which names it in log lines */
  constructor(rid) {
    this.rid = rid;
  }
}

/**
 * The async context while AsyncLocalStorage stores are set (node:async_hooks):
 * the request being handled, if any, and the stores by their storage. A
 * request with no stores keeps its bare RequestScope as the context.
 */
class AsyncFrame {
  /**
   * @param {RequestScope | null} request
   * @param {Map<object, unknown>} stores
   */
  constructor(request, stores) {
    this.request = request;
    this.stores = stores;
  }
}

/** The RequestScope of the request being handled, or null outside any. */
function currentRequestScope() {
  const context = core.getAsyncContext();
  if (context instanceof RequestScope) return context;
  if (context instanceof AsyncFrame) return context.request;
  return null;
}

/** The resource id of the request being handled, or -1 outside any. */
function currentRequestRid() {
  const scope = currentRequestScope();
  return scope === null ? -1 : scope.rid;
}

/**
 * Counts one subrequest (a fetch() or an outbound WebSocket) against the
 * incoming request being handled. Returns the error to raise instead, if
 * it is made outside any request or past the limit.
 * @param {string} what the API, for the message
 * @returns {Error | null}
 */
function takeSubrequest(what) {
  const scope = currentRequestScope();
  if (scope === null) {
    return new TypeError(
      `${what} can only be called while handling a request: outbound I/O is not allowed ` +
        "in a worker's global scope",
    );
  }
  // Per request: a dispatcher may set a lower limit on one call.
  if (scope.subrequestLimit < 0) scope.subrequestLimit = op_fetch_subrequest_limit(scope.rid);
  if (scope.subrequests >= scope.subrequestLimit) {
    return new Error(
      `Too many subrequests: this request may make at most ${scope.subrequestLimit} (the ` +
        "worker's [limits] subrequests, or its dispatcher's limit)",
    );
  }
  scope.subrequests++;
  return null;
}

/**
 * `fetch()` as workers see it.
 * @param {RequestInfo} input
 * @param {RequestInit} [init]
 */
function fetch(input, init = undefined) {
  const refusal = takeSubrequest("fetch()");
  if (refusal !== null) return PromiseReject(refusal);
  // Passed on as called, so deno_fetch sees the caller's argument count.
  return ReflectApply(denoFetch.fetch, undefined, arguments);
}

/** deno_fetch's handler for WebAssembly.compileStreaming and instantiateStreaming. */
const { handleWasmStreaming } = denoFetch;

export {
  AsyncFrame,
  currentRequestRid,
  currentRequestScope,
  fetch,
  handleWasmStreaming,
  RequestScope,
  takeSubrequest,
};
