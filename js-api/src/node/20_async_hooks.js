// node:async_hooks - AsyncLocalStorage and AsyncResource over V8's
// continuation-preserved embedder data, the same async context that carries
// each request's scope (ext:outpost_fetch/10_outbound.js). A store set with
// `run` follows promises, timers and callbacks started inside it, and the
// request it runs under is kept, so fetch() and console lines still know
// their request.
import { core, primordials } from "ext:core/mod.js";
import { AsyncFrame, currentRequestScope } from "ext:outpost_fetch/10_outbound.js";

const { Map, MapPrototypeDelete, MapPrototypeForEach, MapPrototypeGet, MapPrototypeSet, ReflectApply } =
  primordials;

/** The stores of the current async context (null: none). */
function currentStores() {
  const context = core.getAsyncContext();
  return context instanceof AsyncFrame ? context.stores : null;
}

/** Runs `fn` with the async context set to `context`, then restores it. */
function runInContext(context, fn, thisArg, args) {
  const outer = core.getAsyncContext();
  core.setAsyncContext(context);
  try {
    return ReflectApply(fn, thisArg, args);
  } finally {
    core.setAsyncContext(outer);
  }
}

/** A frame like the current one, with `storage` mapped to `store` (or removed). */
function frameWith(storage, store, remove) {
  const stores = new Map();
  const current = currentStores();
  if (current !== null) MapPrototypeForEach(current, (value, key) => MapPrototypeSet(stores, key, value));
  if (remove) MapPrototypeDelete(stores, storage);
  else MapPrototypeSet(stores, storage, store);
  return new AsyncFrame(currentRequestScope(), stores);
}

class AsyncLocalStorage {
  #enabled = true;

  /** The store of the current async context, if `run` set one. */
  getStore() {
    if (!this.#enabled) return undefined;
    const stores = currentStores();
    return stores === null ? undefined : MapPrototypeGet(stores, this);
  }

  /** Runs `fn(...args)` with `store` as this storage's store. */
  run(store, fn, ...args) {
    this.#enabled = true;
    return runInContext(frameWith(this, store, false), fn, undefined, args);
  }

  /** Runs `fn(...args)` outside this storage's store. */
  exit(fn, ...args) {
    return runInContext(frameWith(this, undefined, true), fn, undefined, args);
  }

  /** Sets `store` for the rest of the current synchronous run and what it starts. */
  enterWith(store) {
    this.#enabled = true;
    core.setAsyncContext(frameWith(this, store, false));
  }

  /** Stops returning stores until the next `run` or `enterWith`. */
  disable() {
    this.#enabled = false;
  }

  /** `fn`, bound to the current async context. */
  static bind(fn) {
    const context = core.getAsyncContext();
    return function bound(...args) {
      return runInContext(context, fn, this, args);
    };
  }

  /** A function that runs a callback in the async context of this call. */
  static snapshot() {
    const context = core.getAsyncContext();
    return (fn, ...args) => runInContext(context, fn, undefined, args);
  }
}

class AsyncResource {
  #context = core.getAsyncContext();

  constructor(type = "AsyncResource") {
    this.type = type;
  }

  /** Runs `fn` in the async context this resource was made in. */
  runInAsyncScope(fn, thisArg, ...args) {
    return runInContext(this.#context, fn, thisArg, args);
  }

  bind(fn) {
    return (...args) => this.runInAsyncScope(fn, undefined, ...args);
  }

  static bind(fn, type = undefined) {
    return new AsyncResource(type ?? fn.name ?? "bound-anonymous-fn").bind(fn);
  }

  emitDestroy() {
    return this;
  }

  asyncId() {
    return 0;
  }

  triggerAsyncId() {
    return 0;
  }
}

export { AsyncLocalStorage, AsyncResource };
export default { AsyncLocalStorage, AsyncResource };
