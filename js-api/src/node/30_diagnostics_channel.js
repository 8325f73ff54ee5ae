// node:diagnostics_channel - named channels that libraries publish to and
// tools subscribe to. Subscribers run synchronously, in subscription order.
import { primordials } from "ext:core/mod.js";

const { ArrayPrototypeIndexOf, ArrayPrototypeSlice, ArrayPrototypeSplice, ReflectApply, SafeMap } =
  primordials;

const channels = new SafeMap();

class Channel {
  #subscribers = [];

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

  bindStore() {}

  unbindStore() {
    return false;
  }

  runStores(data, fn, thisArg, ...args) {
    this.publish(data);
    return ReflectApply(fn, thisArg, args);
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
      this.start.publish(context);
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
    },
    async tracePromise(fn, context = {}, thisArg, ...args) {
      this.start.publish(context);
      try {
        const result = await ReflectApply(fn, thisArg, args);
        context.result = result;
        this.asyncEnd.publish(context);
        return result;
      } catch (error) {
        context.error = error;
        this.error.publish(context);
        throw error;
      } finally {
        this.end.publish(context);
      }
    },
  };
  return tracing;
}

export { Channel, channel, hasSubscribers, subscribe, tracingChannel, unsubscribe };
export default { Channel, channel, hasSubscribers, subscribe, tracingChannel, unsubscribe };
