// node:timers/promises - timers as promises, cancellable with a signal.

function delay(ms, value, options) {
  const signal = options?.signal;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(id);
      reject(signal.reason);
    };
    const id = setTimeout(() => {
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

const scheduler = { wait: (ms, options) => delay(ms, undefined, options), yield: () => delay(0) };
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
