// Installs the Web API globals a worker expects. Every class comes from the
// deno ext crates (deno_webidl, deno_web, deno_crypto, deno_fetch); this file
// only wires them onto the global object. It runs while the startup snapshot
// is built, so its cost is paid once at build time, not per isolate.
import { core, primordials } from "ext:core/mod.js";
import { op_worker_log } from "ext:core/ops";
import { currentRequestRid, fetch } from "ext:outpost_fetch/10_outbound.js";
import { HTMLRewriter } from "ext:outpost_html/10_html_rewriter.js";
import { Cache, caches, CacheStorage } from "ext:outpost_cache/10_cache.js";
import { Response, WebSocket, WebSocketPair } from "ext:outpost_websocket/10_websocket.js";
import { scheduler as nodeScheduler } from "node:timers/promises";

const {
  ArrayBuffer,
  ArrayBufferIsView,
  ObjectDefineProperty,
  ObjectSetPrototypeOf,
  RangeError,
  SharedArrayBuffer,
  TypeError,
  Uint8Array,
} = primordials;

const webidl = core.loadExtScript("ext:deno_webidl/00_webidl.js");
const url = core.loadExtScript("ext:deno_web/00_url.js");
const urlPattern = core.loadExtScript("ext:deno_web/01_urlpattern.js");
const consoleMod = core.loadExtScript("ext:deno_web/01_console.js");
const { DOMException } = core.loadExtScript("ext:deno_web/01_dom_exception.js");
const event = core.loadExtScript("ext:deno_web/02_event.js");
const timers = core.loadExtScript("ext:deno_web/02_timers.js");
const abortSignal = core.loadExtScript("ext:deno_web/03_abort_signal.js");
const globalInterfaces = core.loadExtScript("ext:deno_web/04_global_interfaces.js");
const base64 = core.loadExtScript("ext:deno_web/05_base64.js");
const streams = core.loadExtScript("ext:deno_web/06_streams.js");
const encoding = core.loadExtScript("ext:deno_web/08_text_encoding.js");
const file = core.loadExtScript("ext:deno_web/09_file.js");
const messagePort = core.loadExtScript("ext:deno_web/13_message_port.js");
const compression = core.loadExtScript("ext:deno_web/14_compression.js");
const performance = core.loadExtScript("ext:deno_web/15_performance.js");
const crypto = core.loadExtScript("ext:deno_crypto/00_crypto.js");
const headers = core.loadExtScript("ext:deno_fetch/20_headers.js");
const formData = core.loadExtScript("ext:deno_fetch/21_formdata.js");
const request = core.loadExtScript("ext:deno_fetch/23_request.js");
const response = core.loadExtScript("ext:deno_fetch/23_response.js");

// Console output goes to the host, tagged with the level: 0 debug, 1 log and
// info, 2 warn, 3 error.
const console = new consoleMod.Console((msg, level) => op_worker_log(level, msg, currentRequestRid()));

/**
 * `crypto.subtle.timingSafeEqual(a, b)`, a Workers extension: compares two
 * buffers in time that depends only on their length.
 */
function timingSafeEqual(a, b) {
  const bytes = (value, name) => {
    if (ArrayBufferIsView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return new Uint8Array(value);
    throw new TypeError(`timingSafeEqual: ${name} must be an ArrayBuffer or an ArrayBufferView`);
  };
  const left = bytes(a, "the first argument");
  const right = bytes(b, "the second argument");
  if (left.byteLength !== right.byteLength) {
    throw new RangeError("timingSafeEqual: the two buffers must be of the same length");
  }
  let difference = 0;
  for (let i = 0; i < left.byteLength; i++) difference |= left[i] ^ right[i];
  return difference === 0;
}
ObjectDefineProperty(crypto.SubtleCrypto.prototype, "timingSafeEqual", {
  value: timingSafeEqual,
  writable: true,
  configurable: true,
});

const classes = {
  AbortController: abortSignal.AbortController,
  AbortSignal: abortSignal.AbortSignal,
  Blob: file.Blob,
  Cache,
  CacheStorage,
  ByteLengthQueuingStrategy: streams.ByteLengthQueuingStrategy,
  CloseEvent: event.CloseEvent,
  CompressionStream: compression.CompressionStream,
  CountQueuingStrategy: streams.CountQueuingStrategy,
  Crypto: crypto.Crypto,
  CryptoKey: crypto.CryptoKey,
  CustomEvent: event.CustomEvent,
  DecompressionStream: compression.DecompressionStream,
  DOMException,
  ErrorEvent: event.ErrorEvent,
  Event: event.Event,
  EventTarget: event.EventTarget,
  File: file.File,
  FormData: formData.FormData,
  Headers: headers.Headers,
  HTMLRewriter,
  MessageChannel: messagePort.MessageChannel,
  MessageEvent: event.MessageEvent,
  MessagePort: messagePort.MessagePort,
  Performance: performance.Performance,
  PerformanceEntry: performance.PerformanceEntry,
  PerformanceMark: performance.PerformanceMark,
  PerformanceMeasure: performance.PerformanceMeasure,
  PromiseRejectionEvent: event.PromiseRejectionEvent,
  ReadableByteStreamController: streams.ReadableByteStreamController,
  ReadableStream: streams.ReadableStream,
  ReadableStreamBYOBReader: streams.ReadableStreamBYOBReader,
  ReadableStreamBYOBRequest: streams.ReadableStreamBYOBRequest,
  ReadableStreamDefaultController: streams.ReadableStreamDefaultController,
  ReadableStreamDefaultReader: streams.ReadableStreamDefaultReader,
  Request: request.Request,
  Response,
  SubtleCrypto: crypto.SubtleCrypto,
  TextDecoder: encoding.TextDecoder,
  TextDecoderStream: encoding.TextDecoderStream,
  TextEncoder: encoding.TextEncoder,
  TextEncoderStream: encoding.TextEncoderStream,
  TransformStream: streams.TransformStream,
  TransformStreamDefaultController: streams.TransformStreamDefaultController,
  URL: url.URL,
  URLPattern: urlPattern.URLPattern,
  URLSearchParams: url.URLSearchParams,
  WorkerGlobalScope: globalInterfaces.WorkerGlobalScope,
  WebSocket,
  WebSocketPair,
  WritableStream: streams.WritableStream,
  WritableStreamDefaultController: streams.WritableStreamDefaultController,
  WritableStreamDefaultWriter: streams.WritableStreamDefaultWriter,
};

const functions = {
  atob: base64.atob,
  btoa: base64.btoa,
  clearInterval: timers.clearInterval,
  clearTimeout: timers.clearTimeout,
  fetch,
  reportError: event.reportError,
  setInterval: timers.setInterval,
  setTimeout: timers.setTimeout,
  structuredClone: messagePort.structuredClone,
};

const properties = {};
for (const name in classes) properties[name] = core.propNonEnumerable(classes[name]);
for (const name in functions) properties[name] = core.propWritable(functions[name]);
properties.caches = core.propGetterOnly(() => caches);
properties.console = core.propNonEnumerable(console);
properties.crypto = core.propGetterOnly(() => crypto.crypto);
properties.performance = core.propWritable(performance.performance);
properties.self = core.propGetterOnly(() => globalThis);
// Libraries detect Workers by this exact string (Hono's getRuntimeKey()).
properties.navigator = core.propNonEnumerable(
  Object.freeze({ userAgent: "Cloudflare-Workers", hardwareConcurrency: 1 }),
);
// `scheduler.wait(ms, { signal })`: node:timers/promises has the same.
properties.scheduler = core.propWritable(Object.freeze({ wait: nodeScheduler.wait }));
core.defineGlobalProperties(globalThis, properties);

// `globalThis` is the worker's event target, so that service-worker scripts
// can call `addEventListener("fetch", ...)`.
ObjectSetPrototypeOf(globalThis, globalInterfaces.WorkerGlobalScope.prototype);
ObjectDefineProperty(globalThis, webidl.brand, { value: webidl.brand });
event.setEventTargetData(globalThis);
event.saveGlobalThisReference(globalThis);
for (const name of ["addEventListener", "removeEventListener", "dispatchEvent"]) {
  ObjectDefineProperty(globalThis, name, {
    value: event.EventTarget.prototype[name],
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

export { console, consoleMod, event, performance, request, response, streams };
