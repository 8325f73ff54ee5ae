import { area } from "./harness.js";

export const abort = area("abort");
abort.check("AbortController.abort sets reason", () => {
  const c = new AbortController();
  c.abort("why");
  return c.signal.aborted && c.signal.reason === "why";
});
abort.check("abort event fires once", () => {
  const c = new AbortController();
  let n = 0;
  c.signal.addEventListener("abort", () => n++);
  c.abort();
  c.abort();
  return n === 1;
});
abort.check("default reason is an AbortError DOMException", () => {
  const c = new AbortController();
  c.abort();
  return c.signal.reason instanceof DOMException && c.signal.reason.name === "AbortError";
});
abort.check("AbortSignal.abort()", () => AbortSignal.abort().aborted);
abort.check("throwIfAborted", () => {
  try {
    AbortSignal.abort("x").throwIfAborted();
    return false;
  } catch (err) {
    return err === "x";
  }
});
abort.check("AbortSignal.timeout fires a TimeoutError", () =>
  new Promise((resolve) => {
    const s = AbortSignal.timeout(5);
    s.addEventListener("abort", () => resolve(s.reason.name === "TimeoutError"));
  }));
abort.check("AbortSignal.any follows its first aborted input", () => {
  const a = new AbortController();
  const b = new AbortController();
  const any = AbortSignal.any([a.signal, b.signal]);
  b.abort("second");
  return any.aborted && any.reason === "second";
});

export const events = area("events");
events.check("EventTarget dispatch and removeEventListener", () => {
  const t = new EventTarget();
  let n = 0;
  const f = () => n++;
  t.addEventListener("x", f);
  t.dispatchEvent(new Event("x"));
  t.removeEventListener("x", f);
  t.dispatchEvent(new Event("x"));
  return n === 1;
});
events.check("once listeners", () => {
  const t = new EventTarget();
  let n = 0;
  t.addEventListener("x", () => n++, { once: true });
  t.dispatchEvent(new Event("x"));
  t.dispatchEvent(new Event("x"));
  return n === 1;
});
events.check("preventDefault on a cancelable event", () => {
  const t = new EventTarget();
  t.addEventListener("x", (e) => e.preventDefault());
  return t.dispatchEvent(new Event("x", { cancelable: true })) === false;
});
events.check("CustomEvent detail", () => new CustomEvent("c", { detail: { a: 1 } }).detail.a === 1);
events.check("ErrorEvent fields", () => {
  const e = new ErrorEvent("error", { message: "m", filename: "f.js", lineno: 3, colno: 4 });
  return e.message === "m" && e.filename === "f.js" && e.lineno === 3 && e.colno === 4;
});
events.check("PromiseRejectionEvent fields", () => {
  const promise = Promise.resolve();
  const e = new PromiseRejectionEvent("unhandledrejection", { promise, reason: 7 });
  return e.promise === promise && e.reason === 7;
});
events.check("DOMException name and code", () => {
  const e = new DOMException("gone", "NotFoundError");
  return e.name === "NotFoundError" && e.code === 8 && e instanceof Error;
});

export const messaging = area("messaging");
messaging.check("MessageChannel delivers a cloned message", () =>
  new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port2.onmessage = (e) => {
      resolve(e instanceof MessageEvent && e.data.n === 1);
      port1.close();
      port2.close();
    };
    port1.postMessage({ n: 1 });
  }));
messaging.check("MessageEvent data", () => new MessageEvent("message", { data: 5 }).data === 5);
messaging.check("MessagePort is exposed", () => typeof MessagePort === "function");
