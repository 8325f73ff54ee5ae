// `cloudflare:workers`, as far as Outpost can honour it: the worker's `env`
// (a live binding, set before the worker's modules run), the entrypoint base
// classes a module's default export may extend, and `waitUntil`.
// Registered as node:outpost/cloudflare-workers; the bundle resolver maps
// the public name to it (runtime/src/resolve.rs).
import { env } from "ext:outpost_node/02_bindings.js";
import { observeRejection } from "ext:outpost_serve/10_fetch_event.js";

/**
 * Base of a class-based worker (`export default class extends
 * WorkerEntrypoint { fetch(request) {...} }`): each request gets a new
 * instance with `this.ctx` and `this.env`.
 */
class WorkerEntrypoint {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
}

/** Base of a Durable Object class. Outpost does not run Durable Objects yet. */
class DurableObject {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
}

/** Base of a Workflow class. Outpost does not run Workflows yet. */
class WorkflowEntrypoint {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
}

/** Marks a class whose instances may be passed over RPC. */
class RpcTarget {}

/** Keeps `promise` running after the response; its rejection is logged. */
function waitUntil(promise) {
  observeRejection(promise);
}

export { DurableObject, env, RpcTarget, waitUntil, WorkerEntrypoint, WorkflowEntrypoint };
