// Entry point of the startup snapshot. Leaves two handles for the host,
// `globalThis.__outpostInitIsolate` and `globalThis.__outpostBootstrap`,
// which the runtime calls or takes and deletes before any worker code runs.
import { core, primordials } from "ext:core/mod.js";
import { op_worker_log } from "ext:core/ops";
import { consoleMod, event, performance } from "ext:outpost_worker/00_globals.js";
import { serveRequests, warmUp } from "ext:outpost_serve/20_dispatch.js";
import { currentRequestRid, handleWasmStreaming } from "ext:outpost_fetch/10_outbound.js";
import { kvNamespace } from "ext:outpost_kv/10_kv.js";
import { assetsBinding } from "ext:outpost_assets/10_assets.js";
import { dispatchNamespace, serviceBinding } from "ext:outpost_service/10_service.js";
import { setBindings } from "ext:outpost_node/02_bindings.js";
import { WorkerEntrypoint } from "node:outpost/cloudflare-workers";
import { Buffer } from "node:buffer";
import process from "node:process";
import { clearImmediate, setImmediate } from "node:timers";
// Built-in modules workers may import, evaluated here so the snapshot
// holds them ready (the bundle resolver decides who reaches them).
import "node:outpost/cloudflare-workers";
import "node:outpost/cloudflare-sockets";
import "node:assert";
import "node:assert/strict";
import "node:async_hooks";
import "node:crypto";
import "node:diagnostics_channel";
import "node:events";
import "node:fs";
import "node:fs/promises";
import "node:constants";
import "node:http";
import "node:https";
import "node:module";
import "node:net";
import "node:dns";
import "node:dns/promises";
import "node:path";
import "node:stream";
import "node:stream/consumers";
import "node:stream/promises";
import "node:stream/web";
import "node:string_decoder";
import "node:timers";
import "node:timers/promises";
import "node:url";
import "node:util";
import "node:v8";
import "node:zlib";

const {
  ArrayPrototypeIncludes,
  JSONParse,
  ObjectDefineProperty,
  ObjectEntries,
  ObjectFreeze,
  ObjectGetPrototypeOf,
  ObjectHasOwn,
  ObjectKeys,
  ObjectPrototype,
  ObjectPrototypeIsPrototypeOf,
  ReflectApply,
  TypeError,
} = primordials;

/**
 * `env` from the host's JSON: the vars, a KVNamespace per KV binding, the
 * assets binding if there is one, a fetcher per service binding, and a
 * `get()` per dispatch namespace.
 */
function buildEnv(vars, kv, assets, services, namespaces) {
  const env = vars;
  const bindings = ObjectKeys(kv);
  for (let i = 0; i < bindings.length; i++) env[bindings[i]] = kvNamespace(kv[bindings[i]]);
  if (assets) env[assets] = assetsBinding();
  for (let i = 0; i < services.length; i++) env[services[i]] = serviceBinding(services[i]);
  for (let i = 0; i < namespaces.length; i++) env[namespaces[i]] = dispatchNamespace(namespaces[i]);
  return ObjectFreeze(env);
}

function describeError(err) {
  if (err instanceof Error && typeof err.stack === "string") return err.stack;
  return `Uncaught ${consoleMod.inspect(err)}`;
}

// Errors nobody caught, from timers, listeners and waitUntil promises, are
// logged; they never bring the isolate down. A rejection nobody handled is
// first offered to the global scope as an "unhandledrejection" event
// (`onunhandledrejection` included); a listener that calls preventDefault()
// keeps it out of the log.
core.setReportExceptionCallback((err) => op_worker_log(3, `Uncaught ${describeError(err)}\n`, currentRequestRid()));
core.setUnhandledPromiseRejectionHandler((promise, reason) => {
  const rejection = new event.PromiseRejectionEvent("unhandledrejection", { promise, reason, cancelable: true });
  globalThis.dispatchEvent(rejection);
  if (!rejection.defaultPrevented) {
    op_worker_log(3, `Unhandled promise rejection: ${describeError(reason)}\n`, currentRequestRid());
  }
  return true;
});
core.setHandledPromiseRejectionHandler((promise, reason) => {
  globalThis.dispatchEvent(new event.PromiseRejectionEvent("rejectionhandled", { promise, reason }));
});
for (const name of ["error", "unhandledrejection", "rejectionhandled"]) {
  event.defineEventHandler(globalThis, name);
}

/** Whether `exported` is a class-based entrypoint (`extends WorkerEntrypoint`). */
function isEntrypointClass(exported) {
  return typeof exported === "function" && exported.prototype !== undefined &&
    typeof exported.prototype.fetch === "function";
}

/**
 * Called once per isolate by the host, after the worker's modules have been
 * evaluated. Picks the handler form.
 * @param {object} namespace the main module's namespace
 * @param {object} env the worker's bindings
 * @returns {(heads: Array) => void} what the host calls with each batch of requests
 */
function startWorker(namespace, env) {
  performance.setTimeOrigin();
  const exported = namespace.default;
  let handle;
  let scheduled = null;
  // The classes a service binding may name (`entrypoint`), the default
  // export among them when it is one.
  const entrypoints = {
    rpc: (name, args, ctx, entrypoint) =>
      callMethod(new (entrypointClass(namespace, entrypoint))(ctx, env), name, args),
    fetch: (entrypoint, request, ctx) => {
      const instance = new (entrypointClass(namespace, entrypoint))(ctx, env);
      if (typeof instance.fetch !== "function") {
        throw new TypeError(`The entrypoint "${entrypoint}" has no fetch() method.`);
      }
      return instance.fetch(request);
    },
  };
  if (exported !== null && typeof exported === "object" && hasHandler(exported)) {
    handle = typeof exported.fetch === "function" ? (request, ctx) => exported.fetch(request, env, ctx) : noFetch;
    if (typeof exported.scheduled === "function") {
      scheduled = (controller, ctx) => exported.scheduled(controller, env, ctx);
    }
  } else if (isEntrypointClass(exported) || isRpcEntrypoint(exported)) {
    // A new instance per request, as Workers makes one per invocation.
    handle = typeof exported.prototype.fetch === "function"
      ? (request, ctx) => new exported(ctx, env).fetch(request)
      : noFetch;
    if (typeof exported.prototype.scheduled === "function") {
      scheduled = (controller, ctx) => new exported(ctx, env).scheduled(controller);
    }
  } else if (event.listenerCount(globalThis, "fetch") > 0 || event.listenerCount(globalThis, "scheduled") > 0) {
    // Service-worker scripts have no `env`: as in Workers, bindings are
    // globals, visible to handlers (after the script's top level has run).
    for (const name in env) {
      ObjectDefineProperty(globalThis, name, { value: env[name], writable: true, configurable: true });
    }
    handle = event.listenerCount(globalThis, "fetch") > 0 ? null : noFetch;
  } else {
    throw new TypeError(
      "the worker has no fetch handler: export default { fetch(request, env, ctx) } " +
        "or call addEventListener(\"fetch\", ...)",
    );
  }
  return serveRequests(handle, describeError, scheduled, entrypoints);
}

/** Whether `exported` is a class extending WorkerEntrypoint, fetch() or not. */
function isRpcEntrypoint(exported) {
  return typeof exported === "function" && ObjectPrototypeIsPrototypeOf(WorkerEntrypoint, exported);
}

/**
 * The entrypoint class a service binding calls: the named export
 * `entrypoint`, or the default export when none is named.
 */
function entrypointClass(namespace, entrypoint) {
  const name = entrypoint ?? "default";
  const exported = ObjectHasOwn(namespace, name) ? namespace[name] : undefined;
  if (isRpcEntrypoint(exported) || (entrypoint === null && isEntrypointClass(exported))) return exported;
  throw new TypeError(
    entrypoint === null
      ? "RPC needs a default export that extends WorkerEntrypoint"
      : `The worker has no entrypoint named "${entrypoint}": export a class that extends WorkerEntrypoint`,
  );
}

/** Methods RPC never reaches: the object's plumbing, not its API. */
const NOT_RPC = ["constructor", "fetch", "scheduled", "ctx", "env"];

/**
 * Calls method `name` of entrypoint `instance` for an RPC call: only a
 * function its class (or a base class other than Object) defines.
 */
function callMethod(instance, name, args) {
  let owner = ObjectGetPrototypeOf(instance);
  while (owner !== null && owner !== ObjectPrototype && !ObjectHasOwn(owner, name)) {
    owner = ObjectGetPrototypeOf(owner);
  }
  const method = owner === null || owner === ObjectPrototype ? undefined : instance[name];
  if (typeof method !== "function" || ArrayPrototypeIncludes(NOT_RPC, name)) {
    throw new TypeError(`The RPC receiver does not implement the method "${name}".`);
  }
  return ReflectApply(method, instance, args);
}

/** Whether a module's default export handles requests or cron triggers. */
function hasHandler(exported) {
  return typeof exported.fetch === "function" || typeof exported.scheduled === "function";
}

/** What a worker with only a scheduled handler answers a request. */
function noFetch() {
  throw new TypeError("this worker has no fetch handler, only a scheduled one");
}

/**
 * Called once per isolate by the host, before the worker's modules are
 * evaluated: sets `env` (so `cloudflare:workers` has it at the top level)
 * and returns what starts the worker once they have been.
 * @param {string} envJson the worker's vars, KV bindings and whether
 *   nodejs_compat is on, as JSON
 * @returns {(namespace: object) => Function}
 */
function bootstrap(envJson) {
  const { vars, kv, assets, services, namespaces, nodejsCompat } = JSONParse(envJson);
  const env = buildEnv(vars, kv, assets, services, namespaces);
  setBindings(env);
  // As Workers with nodejs_compat: Node's own globals too.
  if (nodejsCompat) {
    const nodeGlobals = { Buffer, clearImmediate, global: globalThis, process, setImmediate };
    for (const [name, value] of ObjectEntries(nodeGlobals)) {
      ObjectDefineProperty(globalThis, name, { value, writable: true, configurable: true });
    }
  }
  return (namespace) => startWorker(namespace, env);
}

// deno_core binds ops through `globalThis.Deno` when an isolate starts from
// the snapshot, so `Deno` and `__bootstrap` stay until then; the host deletes
// them, with this entry point, before loading worker code.
ObjectDefineProperty(globalThis, "__outpostBootstrap", {
  value: bootstrap,
  configurable: true,
});

// Called by the host once per isolate, before any worker code: what the
// snapshot cannot keep. deno_core holds the WebAssembly streaming handler
// (compileStreaming, instantiateStreaming) in Rust, outside the V8 heap.
ObjectDefineProperty(globalThis, "__outpostInitIsolate", {
  value: () => core.setWasmStreamingCallback(handleWasmStreaming),
  configurable: true,
});

warmUp();
