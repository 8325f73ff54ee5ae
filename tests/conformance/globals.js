import { area, bytes } from "./harness.js";

export const globals = area("globals");
const g = globals.check.bind(globals);
g("atob and btoa", () => atob(btoa("\u00ff edge")) === "\u00ff edge");
g("btoa refuses characters past U+00FF", () => {
  try {
    btoa("€");
    return false;
  } catch (err) {
    return err instanceof DOMException && err.name === "InvalidCharacterError";
  }
});
g("setTimeout passes arguments", () => new Promise((resolve) => setTimeout((a, b) => resolve(a + b === 3), 1, 1, 2)));
g("clearTimeout cancels", () =>
  new Promise((resolve) => {
    let fired = false;
    clearTimeout(setTimeout(() => (fired = true), 1));
    setTimeout(() => resolve(!fired), 10);
  }));
g("setInterval and clearInterval", () =>
  new Promise((resolve) => {
    let n = 0;
    const id = setInterval(() => {
      if (++n === 3) {
        clearInterval(id);
        setTimeout(() => resolve(n === 3), 10);
      }
    }, 1);
  }));
g("queueMicrotask runs before a timer", () =>
  new Promise((resolve) => {
    const order = [];
    setTimeout(() => {
      order.push("timer");
      resolve(order.join() === "micro,timer");
    }, 0);
    queueMicrotask(() => order.push("micro"));
  }));
g("structuredClone of Map, Date, typed arrays and cycles", () => {
  const o = { m: new Map([[1, 2]]), d: new Date(5), u: bytes(1) };
  o.self = o;
  const c = structuredClone(o);
  return c !== o && c.m.get(1) === 2 && c.d.getTime() === 5 && c.u[0] === 1 && c.self === c;
});
g("structuredClone refuses functions", () => {
  try {
    structuredClone(() => 1);
    return false;
  } catch (err) {
    return err instanceof DOMException && err.name === "DataCloneError";
  }
});
g("reportError dispatches an error event", () => {
  let seen;
  const listener = (e) => {
    seen = e;
    e.preventDefault();
  };
  globalThis.addEventListener("error", listener);
  reportError(new Error("reported"));
  globalThis.removeEventListener("error", listener);
  return seen instanceof ErrorEvent && seen.error.message === "reported";
});
g("self is the global object", () => self === globalThis);
g("navigator.userAgent is a string", () => typeof navigator.userAgent === "string" && navigator.userAgent.length > 0);
g("onerror, onunhandledrejection and onrejectionhandled exist", () =>
  "onerror" in globalThis && "onunhandledrejection" in globalThis && "onrejectionhandled" in globalThis);
g("console has every method", () =>
  ["assert", "clear", "count", "countReset", "debug", "dir", "dirxml", "error", "group", "groupCollapsed",
    "groupEnd", "info", "log", "table", "time", "timeEnd", "timeLog", "trace", "warn"]
    .every((m) => typeof console[m] === "function"));
g("performance.now and timeOrigin", () => {
  const a = performance.now();
  const b = performance.now();
  return b >= a && typeof performance.timeOrigin === "number" && performance.timeOrigin > 0;
});
g("performance marks and measures", () => {
  performance.mark("a");
  performance.mark("b");
  return performance.measure("ab", "a", "b").name === "ab";
});

export const wasm = area("wasm");
// (module (func (export "add") (param i32 i32) (result i32)
//   local.get 0 local.get 1 i32.add))
const ADD = bytes(
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f,
  0x03, 0x02, 0x01, 0x00,
  0x07, 0x07, 0x01, 0x03, 0x61, 0x64, 0x64, 0x00, 0x00,
  0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b,
);
const w = wasm.check.bind(wasm);
w("validate", () => WebAssembly.validate(ADD) && !WebAssembly.validate(bytes(0, 1, 2)));
w("compile and instantiate a Module", async () => {
  const module = await WebAssembly.compile(ADD);
  const instance = await WebAssembly.instantiate(module);
  return module instanceof WebAssembly.Module && instance.exports.add(2, 3) === 5;
});
w("instantiate from bytes", async () => (await WebAssembly.instantiate(ADD)).instance.exports.add(1, 1) === 2);
w("Memory, Table and Global", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const table = new WebAssembly.Table({ initial: 1, element: "anyfunc" });
  const global = new WebAssembly.Global({ value: "i32", mutable: true }, 4);
  return memory.buffer.byteLength === 65536 && table.length === 1 && global.value === 4;
});

export const workers = area("workers-apis");
const k = workers.check.bind(workers);
k("fetch is a function", () => typeof fetch === "function");
k("HTMLRewriter is a class", () => typeof HTMLRewriter === "function");
k("WebSocketPair is a class", () => typeof WebSocketPair === "function");
k("WebSocket is a class", () => typeof WebSocket === "function");
k("caches.default exists", () => typeof caches === "object" && typeof caches.default === "object");

globals.check("onunhandledrejection receives the rejection", () =>
  new Promise((resolve) => {
    const reason = new Error("nobody handles this");
    globalThis.onunhandledrejection = (e) => {
      e.preventDefault();
      globalThis.onunhandledrejection = null;
      resolve(e instanceof PromiseRejectionEvent && e.reason === reason);
    };
    Promise.reject(reason);
  }));
globals.check("onerror receives reportError", () => {
  let seen;
  globalThis.onerror = (e) => {
    seen = e;
    e.preventDefault();
  };
  reportError(new Error("to onerror"));
  globalThis.onerror = null;
  return seen instanceof ErrorEvent && seen.message.includes("to onerror");
});

wasm.check("compileStreaming and instantiateStreaming from a Response", async () => {
  const response = () => new Response(ADD, { headers: { "content-type": "application/wasm" } });
  const module = await WebAssembly.compileStreaming(response());
  const { instance } = await WebAssembly.instantiateStreaming(response());
  return module instanceof WebAssembly.Module && instance.exports.add(2, 3) === 5;
});
globals.check("Atomics.wait is refused, so no worker can block its thread", () => {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    return "waited";
  } catch (err) {
    return err instanceof TypeError;
  }
});
