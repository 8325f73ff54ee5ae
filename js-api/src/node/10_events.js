// node:events - EventEmitter as Node defines it, in plain JS on the Web
// platform: listeners in registration order, `once` wrappers, "newListener"
// and "removeListener" events, an "error" event that throws when nobody
// listens, and the static `once` helper that awaits an event.
import { primordials } from "ext:core/mod.js";

const {
  ArrayPrototypeIndexOf,
  ArrayPrototypeSlice,
  ArrayPrototypeSplice,
  ArrayPrototypeUnshift,
  Error,
  NumberIsNaN,
  ObjectCreate,
  ObjectDefineProperties,
  ObjectGetOwnPropertyDescriptors,
  ObjectHasOwn,
  Promise,
  RangeError,
  ReflectApply,
  ReflectOwnKeys,
  TypeError,
} = primordials;

const kCapture = Symbol("kCapture");
let defaultMaxListeners = 10;

function checkListener(listener) {
  if (typeof listener !== "function") {
    throw new TypeError(`The "listener" argument must be of type function. Received ${typeof listener}`);
  }
}

function eventsOf(emitter) {
  if (emitter._events === undefined || !ObjectHasOwn(emitter, "_events")) {
    emitter._events = ObjectCreate(null);
    emitter._eventsCount = 0;
  }
  return emitter._events;
}

function addListener(emitter, type, listener, prepend) {
  checkListener(listener);
  const events = eventsOf(emitter);
  if (events.newListener !== undefined) {
    emitter.emit("newListener", type, listener.listener ?? listener);
  }
  const existing = events[type];
  if (existing === undefined) {
    events[type] = [listener];
    emitter._eventsCount++;
  } else if (prepend) {
    ArrayPrototypeUnshift(existing, listener);
  } else {
    existing.push(listener);
  }
  const max = emitter.getMaxListeners();
  const list = events[type];
  if (max > 0 && list.length > max && !list.warned) {
    list.warned = true;
    console.warn(
      `MaxListenersExceededWarning: Possible EventEmitter memory leak detected. ${list.length} ` +
        `${String(type)} listeners added. Use emitter.setMaxListeners() to increase limit`,
    );
  }
  return emitter;
}

function onceWrapper(emitter, type, listener) {
  const state = { fired: false };
  function wrapped(...args) {
    if (state.fired) return undefined;
    state.fired = true;
    emitter.removeListener(type, wrapped);
    return ReflectApply(listener, emitter, args);
  }
  wrapped.listener = listener;
  return wrapped;
}

/**
 * A function, not a class: CommonJS code still writes
 * `EventEmitter.call(this)` in its own constructors.
 */
function EventEmitter(options = undefined) {
  EventEmitter.init.call(this, options);
}

EventEmitter.init = function init(options) {
  if (this._events === undefined || !ObjectHasOwn(this, "_events")) {
    this._events = ObjectCreate(null);
    this._eventsCount = 0;
  }
  this._maxListeners = this._maxListeners ?? undefined;
  this[kCapture] = options?.captureRejections ?? false;
};

ObjectDefineProperties(EventEmitter, {
  defaultMaxListeners: {
    get() {
      return defaultMaxListeners;
    },
    set(n) {
      if (typeof n !== "number" || n < 0 || NumberIsNaN(n)) {
        throw new RangeError(`The value of "defaultMaxListeners" is out of range. Received ${n}`);
      }
      defaultMaxListeners = n;
    },
    enumerable: true,
  },
});

class Methods {
  setMaxListeners(n) {
    if (typeof n !== "number" || n < 0 || NumberIsNaN(n)) {
      throw new RangeError(`The value of "n" is out of range. Received ${n}`);
    }
    this._maxListeners = n;
    return this;
  }

  getMaxListeners() {
    return this._maxListeners === undefined ? defaultMaxListeners : this._maxListeners;
  }

  emit(type, ...args) {
    const events = this._events;
    const handlers = events === undefined ? undefined : events[type];
    if (handlers === undefined) {
      if (type === "error") {
        const err = args[0];
        if (err instanceof Error) throw err;
        const wrapped = new Error(`Unhandled error. (${String(err)})`);
        wrapped.context = err;
        throw wrapped;
      }
      return false;
    }
    const listeners = ArrayPrototypeSlice(handlers);
    for (let i = 0; i < listeners.length; i++) ReflectApply(listeners[i], this, args);
    return true;
  }

  addListener(type, listener) {
    return addListener(this, type, listener, false);
  }

  on(type, listener) {
    return addListener(this, type, listener, false);
  }

  prependListener(type, listener) {
    return addListener(this, type, listener, true);
  }

  once(type, listener) {
    checkListener(listener);
    return addListener(this, type, onceWrapper(this, type, listener), false);
  }

  prependOnceListener(type, listener) {
    checkListener(listener);
    return addListener(this, type, onceWrapper(this, type, listener), true);
  }

  removeListener(type, listener) {
    checkListener(listener);
    const events = this._events;
    const list = events === undefined ? undefined : events[type];
    if (list === undefined) return this;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i] === listener || list[i].listener === listener) {
        ArrayPrototypeSplice(list, i, 1);
        if (list.length === 0) {
          delete events[type];
          this._eventsCount--;
        }
        if (events.removeListener !== undefined) this.emit("removeListener", type, listener);
        break;
      }
    }
    return this;
  }

  off(type, listener) {
    return this.removeListener(type, listener);
  }

  removeAllListeners(type = undefined) {
    const events = this._events;
    if (events === undefined) return this;
    const types = type === undefined ? ReflectOwnKeys(events) : [type];
    for (const name of types) {
      if (type === undefined && name === "removeListener") continue;
      const list = events[name];
      if (list === undefined) continue;
      for (let i = list.length - 1; i >= 0; i--) this.removeListener(name, list[i]);
    }
    if (type === undefined) {
      this._events = ObjectCreate(null);
      this._eventsCount = 0;
    }
    return this;
  }

  listeners(type) {
    const list = this._events?.[type];
    if (list === undefined) return [];
    return list.map((l) => l.listener ?? l);
  }

  rawListeners(type) {
    const list = this._events?.[type];
    return list === undefined ? [] : ArrayPrototypeSlice(list);
  }

  listenerCount(type, listener = undefined) {
    const list = this._events?.[type];
    if (list === undefined) return 0;
    if (listener === undefined) return list.length;
    let count = 0;
    for (const l of list) if (l === listener || l.listener === listener) count++;
    return count;
  }

  eventNames() {
    return this._events === undefined ? [] : ReflectOwnKeys(this._events);
  }
}

const methods = ObjectGetOwnPropertyDescriptors(Methods.prototype);
delete methods.constructor;
ObjectDefineProperties(EventEmitter.prototype, methods);
EventEmitter.prototype._events = undefined;
EventEmitter.prototype._eventsCount = 0;
EventEmitter.prototype._maxListeners = undefined;
EventEmitter.EventEmitter = EventEmitter;
EventEmitter.captureRejectionSymbol = Symbol.for("nodejs.rejection");
EventEmitter.errorMonitor = Symbol("events.errorMonitor");

/** Resolves with the arguments of `emitter`'s next `name` event; rejects on "error". */
function once(emitter, name, options = undefined) {
  return new Promise((resolve, reject) => {
    const signal = options?.signal;
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onEvent = (...args) => {
      cleanup();
      resolve(args);
    };
    const onError = (err) => {
      cleanup();
      reject(err);
    };
    const onAbort = () => {
      cleanup();
      reject(signal.reason);
    };
    const isTarget = typeof emitter.addEventListener === "function" && typeof emitter.on !== "function";
    function cleanup() {
      if (isTarget) emitter.removeEventListener(name, onEvent);
      else {
        emitter.removeListener(name, onEvent);
        if (name !== "error") emitter.removeListener("error", onError);
      }
      signal?.removeEventListener("abort", onAbort);
    }
    if (isTarget) {
      emitter.addEventListener(name, onEvent, { once: true });
    } else {
      emitter.on(name, onEvent);
      if (name !== "error") emitter.on("error", onError);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The listeners of an EventEmitter or EventTarget for `name`. */
function getEventListeners(emitter, name) {
  if (typeof emitter.listeners === "function") return emitter.listeners(name);
  return [];
}

function setMaxListeners(n = defaultMaxListeners, ...emitters) {
  if (emitters.length === 0) defaultMaxListeners = n;
  for (const emitter of emitters) emitter.setMaxListeners?.(n);
}

function listenerCount(emitter, type) {
  return emitter.listenerCount(type);
}

EventEmitter.once = once;
EventEmitter.getEventListeners = getEventListeners;
EventEmitter.setMaxListeners = setMaxListeners;
EventEmitter.listenerCount = listenerCount;
const { captureRejectionSymbol, errorMonitor } = EventEmitter;

export default EventEmitter;
export {
  captureRejectionSymbol,
  errorMonitor,
  EventEmitter,
  getEventListeners,
  listenerCount,
  once,
  setMaxListeners,
};
