// node:timers/promises - timers as promises, cancellable with a signal.
// Also the global `scheduler.wait` (js-api/src/worker/00_globals.js).
import { core } from "ext:core/mod.js";

// deno's own timers, whatever a worker later does to the globals.
const timers = core.loadExtScript("ext:deno_web/02_timers.js");

function delay(ms, value, options) {
  const signal = options?.signal;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      timers.clearTimeout.call(globalThis, id);
      reject(signal.reason);
    };
    const id = timers.setTimeout.call(globalThis, () => {
      signal?.removeEventListener("abort", onAbort);
      resolve(value);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function setTimeoutPromise(ms = 1, value = undefined, options = undefined) {
  return delay(ms, value, options);
}

function setImmediatePromise(value = undefined, options = undefined) {
  return delay(0, value, options);
}

async function* setIntervalPromise(ms = 1, value = undefined, options = undefined) {
  while (true) {
    yield await delay(ms, value, options);
  }
}

/** `scheduler.wait(ms, { signal })` resolves after `ms` milliseconds. */
const scheduler = { wait: (ms, options = undefined) => delay(ms, undefined, options), yield: () => delay(0) };
const promises = {
  scheduler,
  setImmediate: setImmediatePromise,
  setInterval: setIntervalPromise,
  setTimeout: setTimeoutPromise,
};

export default promises;
export {
  scheduler,
  setImmediatePromise as setImmediate,
  setIntervalPromise as setInterval,
  setTimeoutPromise as setTimeout,
};
