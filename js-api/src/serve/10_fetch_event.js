// The objects a handler receives besides the request: the module form's
// `ctx` (ExecutionContext) and the service-worker form's FetchEvent.
import { primordials } from "ext:core/mod.js";
import { op_worker_log } from "ext:core/ops";
import { currentRequestRid } from "ext:outpost_fetch/10_outbound.js";
import { event } from "ext:outpost_worker/00_globals.js";

const { Error, PromisePrototypeThen, PromiseResolve, String, TypeError } = primordials;

function describe(err) {
  return err instanceof Error && typeof err.stack === "string" ? err.stack : String(err);
}

/** Keeps a promise's rejection from going unnoticed. */
function observe(promise, describeError = describe) {
  PromisePrototypeThen(PromiseResolve(promise), undefined, (err) =>
    op_worker_log(3, `Uncaught (in waitUntil) ${describeError(err)}\n`, currentRequestRid())
  );
}

class ExecutionContext {
  #describeError;
  #passThrough = false;
  props = {};

  constructor(describeError) {
    this.#describeError = describeError;
  }

  /** Keeps `promise` running after the response has been sent. */
  waitUntil(promise) {
    observe(promise, this.#describeError);
  }

  /**
   * Asks for the request to go to the origin if the handler throws. Outpost
   * has no origin behind a worker yet, so a throwing handler still gets the
   * generic 500 response.
   */
  passThroughOnException() {
    this.#passThrough = true;
  }
}

class FetchEvent extends event.Event {
  #request;
  #ctx;
  #response = null;

  constructor(type, init) {
    super(type);
    this.#request = init.request;
    this.#ctx = init.ctx;
  }

  get request() {
    return this.#request;
  }

  get responded() {
    return this.#response !== null;
  }

  get response() {
    return this.#response;
  }

  respondWith(response) {
    if (this.#response !== null) {
      throw new TypeError("respondWith() has already been called for this request");
    }
    this.#response = PromiseResolve(response);
    this.stopImmediatePropagation();
  }

  waitUntil(promise) {
    this.#ctx.waitUntil(promise);
  }

  passThroughOnException() {
    this.#ctx.passThroughOnException();
  }
}

export { ExecutionContext, FetchEvent, observe as observeRejection };
