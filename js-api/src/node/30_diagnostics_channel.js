// node:diagnostics_channel - named channels that libraries publish to and
// tools subscribe to. Subscribers run synchronously, in subscription order.
import { primordials } from "ext:core/mod.js";

const {
  ArrayPrototypeIndexOf,
  ArrayPrototypeSlice,
  ArrayPrototypeSplice,
  PromisePrototypeThen,
  PromiseResolve,
  ReflectApply,
  SafeMap,
} = primordials;

const channels = new SafeMap();

class Channel {
  #subscribers = [];
  // AsyncLocalStorage instances bound with bindStore, each with its
  // transform of the message into the store.
  #stores = new SafeMap();

  constructor(name) {
    this.name = name;
  }

  get hasSubscribers() {
    return this.#subscribers.length > 0;
  }

  subscribe(subscriber) {
    this.#subscribers.push(subscriber);
  }

  unsubscribe(subscriber) {
    const at = ArrayPrototypeIndexOf(this.#subscribers, subscriber);
    if (at === -1) return false;
    ArrayPrototypeSplice(this.#subscribers, at, 1);
    return true;
  }

  publish(message) {
    const subscribers = ArrayPrototypeSlice(this.#subscribers);
    for (let i = 0; i < subscribers.length; i++) {
      try {
        subscribers[i](message, this.name);
      } catch (err) {
        reportError(err);
      }
    }
  }

  get hasStores() {
    return this.#stores.size > 0;
  }

  /** Sets `store` (an AsyncLocalStorage) to the message, or `transform(message)`, in runStores. */
  bindStore(store, transform = undefined) {
    this.#stores.set(store, transform);
  }

  unbindStore(store) {
    return this.#stores.delete(store);
  }

  /** Publishes `data` and runs `fn` with every bound store set from it. */
  runStores(data, fn, thisArg, ...args) {
    let run = () => {
      this.publish(data);
      return ReflectApply(fn, thisArg, args);
    };
    for (const [store, transform] of this.#stores) {
      const inner = run;
      run = () => store.run(transform === undefined ? data : transform(data), inner);
    }
    return run();
  }
}

/** The channel named `name`, made on first use. */
function channel(name) {
  let found = channels.get(name);
  if (found === undefined) {
    found = new Channel(name);
    channels.set(name, found);
  }
  return found;
}

function hasSubscribers(name) {
  return channels.get(name)?.hasSubscribers ?? false;
}

function subscribe(name, subscriber) {
  channel(name).subscribe(subscriber);
}

function unsubscribe(name, subscriber) {
  return channel(name).unsubscribe(subscriber);
}

/** The five channels of a traced operation (start, end, asyncStart, asyncEnd, error). */
function tracingChannel(nameOrChannels) {
  const named = (event) =>
    typeof nameOrChannels === "string" ? channel(`tracing:${nameOrChannels}:${event}`) : nameOrChannels[event];
  const tracing = {
    start: named("start"),
    end: named("end"),
    asyncStart: named("asyncStart"),
    asyncEnd: named("asyncEnd"),
    error: named("error"),
    get hasSubscribers() {
      return this.start.hasSubscribers || this.end.hasSubscribers || this.asyncStart.hasSubscribers ||
        this.asyncEnd.hasSubscribers || this.error.hasSubscribers;
    },
    traceSync(fn, context = {}, thisArg, ...args) {
      return this.start.runStores(context, () => {
        try {
          const result = ReflectApply(fn, thisArg, args);
          context.result = result;
          return result;
        } catch (error) {
          context.error = error;
          this.error.publish(context);
          throw error;
        } finally {
          this.end.publish(context);
        }
      });
    },
    tracePromise(fn, context = {}, thisArg, ...args) {
      return this.start.runStores(context, () => {
        try {
          const promise = PromiseResolve(ReflectApply(fn, thisArg, args));
          return PromisePrototypeThen(
            promise,
            (result) => {
              context.result = result;
              this.asyncStart.publish(context);
              this.asyncEnd.publish(context);
              return result;
            },
            (error) => {
              context.error = error;
              this.error.publish(context);
              this.asyncStart.publish(context);
              this.asyncEnd.publish(context);
              throw error;
            },
          );
        } catch (error) {
          context.error = error;
          this.error.publish(context);
          throw error;
        } finally {
          this.end.publish(context);
        }
      });
    },
    traceCallback(fn, position = -1, context = {}, thisArg, ...args) {
      const at = position < 0 ? args.length + position : position;
      const callback = args[at];
      args[at] = (err, ...results) => {
        if (err) {
          context.error = err;
          this.error.publish(context);
        } else {
          context.result = results[0];
        }
        this.asyncStart.publish(context);
        try {
          return ReflectApply(callback, undefined, [err, ...results]);
        } finally {
          this.asyncEnd.publish(context);
        }
      };
      return this.traceSync(fn, context, thisArg, ...args);
    },
  };
  return tracing;
}

export { Channel, channel, hasSubscribers, subscribe, tracingChannel, unsubscribe };
export default { Channel, channel, hasSubscribers, subscribe, tracingChannel, unsubscribe };
