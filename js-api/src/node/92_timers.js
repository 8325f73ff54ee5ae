// node:timers - the global timers under Node's names, setImmediate
// included (a zero-delay timer).

function setImmediate(callback, ...args) {
  return setTimeout(callback, 0, ...args);
}

function clearImmediate(id) {
  clearTimeout(id);
}

// Called as methods of this module (timers.setTimeout(...)) too, which the
// global functions refuse as an illegal `this`.
const setTimeoutExport = (...args) => setTimeout(...args);
const clearTimeoutExport = (id) => clearTimeout(id);
const setIntervalExport = (...args) => setInterval(...args);
const clearIntervalExport = (id) => clearInterval(id);
const timers = {
  clearImmediate,
  clearInterval: clearIntervalExport,
  clearTimeout: clearTimeoutExport,
  setImmediate,
  setInterval: setIntervalExport,
  setTimeout: setTimeoutExport,
};

export default timers;
export {
  clearImmediate,
  clearIntervalExport as clearInterval,
  clearTimeoutExport as clearTimeout,
  setImmediate,
  setIntervalExport as setInterval,
  setTimeoutExport as setTimeout,
};
