// The per-isolate request path: the host calls in with a batch of requests;
// each runs the handler, and its Response goes back whole or streamed.
// Requests are not awaited one by one, so a handler waiting on a timer does
// not hold up the next request.
import { core, primordials } from "ext:core/mod.js";
import {
  op_serve_close_body,
  op_serve_entrypoint,
  op_serve_fail,
  op_serve_read_body,
  op_serve_request_cf,
  op_serve_respond_static,
  op_serve_respond_stream,
  op_serve_respond_text,
  op_serve_respond_websocket,
  op_serve_write_body,
} from "ext:core/ops";
import { request as requestMod, response as responseMod, streams } from "ext:outpost_worker/00_globals.js";
import { ExecutionContext, FetchEvent } from "ext:outpost_serve/10_fetch_event.js";
import { ScheduledController, serviceWorkerScheduled } from "ext:outpost_serve/15_scheduled.js";
import { RequestScope } from "ext:outpost_fetch/10_outbound.js";
import { webSocketPeerOf } from "ext:outpost_websocket/10_websocket.js";

const {
  ArrayPrototypePush,
  JSONParse,
  Number,
  ObjectDefineProperty,
  ObjectFreeze,
  ObjectPrototypeIsPrototypeOf,
  PromiseResolve,
  StringPrototypeIndexOf,
  StringPrototypeSlice,
  StringPrototypeSplit,
  TypeError,
  TypedArrayPrototypeGetSymbolToStringTag,
  TypedArrayPrototypeSet,
  TypedArrayPrototypeSubarray,
  Uint8Array,
} = primordials;
const { InnerBody } = core.loadExtScript("ext:deno_fetch/22_body.js");
const { fromInnerRequest, toInnerRequest } = requestMod;

// `request.cf` on every Request: the edge's data for a request the worker
// was handed, undefined for one it made itself.
ObjectDefineProperty(requestMod.Request.prototype, "cf", {
  get() {
    const inner = toInnerRequest(this);
    return inner instanceof ServedInnerRequest ? inner.cf() : undefined;
  },
  configurable: true,
  enumerable: false,
});
const {
  getInnerResponse,
  ResponsePrototype,
  SERVE_FAST_HEADER_DEFAULT_TEXT,
  SERVE_FAST_HEADER_NONE,
  serveFastBodyKey,
  serveFastConsumedKey,
  serveFastContentTypeKey,
  serveFastHeaderKindKey,
  serveFastStatusKey,
  toInnerResponse,
} = responseMod;
const { ReadableStream, ReadableStreamPrototype } = streams;

const EMPTY = new Uint8Array(0);
/**
 * Values per request from the host: `rid, method, url, hasBody, headerText`
 * (`RequestBatch` in runtime/src/ext/serve/ops.rs).
 */
const HEAD_FIELDS = 5;
/** The `method` of a cron firing, whose `url` is the cron and `headerText` the time. */
const SCHEDULED = -1;
/** The `method` of an RPC call over a service binding, whose `url` is the entrypoint method. */
const RPC = -2;
/**
 * The `method` of a request for a named entrypoint (over a service binding),
 * whose `url` is the method and the URL, space-separated.
 */
const NAMED = -3;
/** Methods the host sends as an index (`KNOWN_METHODS` in ops.rs). */
const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"];
// Shared by every static response; only the host reads them. Not frozen:
// reading a frozen array's elements from Rust takes V8's slow path.
const NO_HEADERS = [];
const DEFAULT_TEXT_HEADERS = [["content-type", "text/plain;charset=UTF-8"]];

function requestBodyStream(rid) {
  return new ReadableStream({
    async pull(controller) {
      const chunk = await op_serve_read_body(rid);
      if (chunk === null) controller.close();
      else controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
}

/**
 * The inner request (deno_fetch's `InnerRequest` shape) of a request the
 * host handed in. deno_fetch's `newInnerRequest` builds an object literal
 * with accessors and closures per request, which V8 keeps in dictionary
 * mode; a class shares all of that through its prototype, which matters
 * most in isolates too cold to have optimised the request path.
 */
class ServedInnerRequest {
  methodInner;
  // The headers as the host sent them, split into deno_fetch's header list
  // only when something reads it.
  headerText;
  headerListInner = null;
  body;
  redirectMode = "follow";
  redirectCount = 0;
  clientRid = null;
  blobUrlEntry = null;
  urlInner;
  // deno_fetch's URL lists, built only if something asks for them: a
  // served request has one URL, and most handlers only read it.
  urlListInner = null;
  urlListProcessedInner = null;

  // The request's id with the host, for `request.cf`, read on first use.
  rid;
  cfInner = undefined;

  constructor(rid, method, url, headerText, body) {
    this.rid = rid;
    this.methodInner = method;
    this.headerText = headerText;
    this.body = body;
    this.urlInner = url;
  }

  get method() {
    return this.methodInner;
  }

  set method(value) {
    this.methodInner = value;
  }

  get headerList() {
    if (this.headerListInner === null) this.headerListInner = splitHeaderText(this.headerText);
    return this.headerListInner;
  }

  set headerList(value) {
    this.headerListInner = value;
  }

  get urlList() {
    if (this.urlListInner === null) {
      const url = this.urlInner;
      this.urlListInner = [() => url];
    }
    return this.urlListInner;
  }

  set urlList(value) {
    this.urlListInner = value;
  }

  get urlListProcessed() {
    if (this.urlListProcessedInner === null) this.urlListProcessedInner = [this.urlInner];
    return this.urlListProcessedInner;
  }

  set urlListProcessed(value) {
    this.urlListProcessedInner = value;
  }

  url() {
    return this.urlListProcessedInner === null ? this.urlInner : this.urlListProcessedInner[0];
  }

  /** `request.cf`: what the edge knows of the request, frozen; undefined if nothing. */
  cf() {
    if (this.cfInner === undefined) {
      const text = op_serve_request_cf(this.rid);
      this.cfInner = text === null ? null : ObjectFreeze(JSONParse(text));
    }
    return this.cfInner ?? undefined;
  }

  currentUrl() {
    if (this.urlListInner === null) return this.url();
    const urlList = this.urlList;
    const processed = this.urlListProcessed;
    const last = urlList.length - 1;
    if (processed[last] === undefined) processed[last] = urlList[last]();
    return processed[last];
  }
}

/** `name\nvalue\nname\nvalue...` as `[[name, value], ...]`. */
function splitHeaderText(text) {
  const list = [];
  if (text === "") return list;
  const parts = StringPrototypeSplit(text, "\n");
  for (let i = 0; i + 1 < parts.length; i += 2) ArrayPrototypePush(list, [parts[i], parts[i + 1]]);
  return list;
}

/** The Request for a request head from the host. */
function toRequest(rid, method, url, hasBody, headerText) {
  const body = hasBody ? new InnerBody(requestBodyStream(rid)) : null;
  const inner = new ServedInnerRequest(
    rid,
    typeof method === "number" ? METHODS[method] : method,
    url,
    headerText,
    body,
  );
  return fromInnerRequest(inner, "immutable");
}

/**
 * The header list of a Response deno_fetch marked as a plain 200 with a
 * static body, and that body; `null` if it is not one, or its body is gone.
 * Reading these marks skips materializing the body and header list, which
 * is most of the cost of taking a small Response apart.
 */
function takeStaticResponse(response) {
  if (response[serveFastStatusKey] !== 200 || response[serveFastConsumedKey]) return null;
  const body = getInnerResponse(response).body;
  if (body !== null) {
    const source = body.streamOrStatic;
    if (ObjectPrototypeIsPrototypeOf(ReadableStreamPrototype, source) || source.consumed) return null;
    source.consumed = true;
  }
  response[serveFastConsumedKey] = true;
  const kind = response[serveFastHeaderKindKey];
  let headerList;
  if (kind === SERVE_FAST_HEADER_NONE) headerList = NO_HEADERS;
  else if (kind === SERVE_FAST_HEADER_DEFAULT_TEXT) headerList = DEFAULT_TEXT_HEADERS;
  else headerList = [["content-type", response[serveFastContentTypeKey]]];
  return { status: 200, headerList, body: response[serveFastBodyKey], stream: null };
}

/**
 * Takes a Response apart for the host: its status, its header list, and its
 * body as a string or bytes (static bodies, consumed here) or as a
 * ReadableStream.
 */
function responseParts(response) {
  const fast = takeStaticResponse(response);
  if (fast !== null) return fast;
  const inner = toInnerResponse(response);
  const { status, headerList } = inner;
  const body = inner.body;
  if (body === null) return { status, headerList, body: EMPTY, stream: null };
  const source = body.streamOrStatic;
  if (!ObjectPrototypeIsPrototypeOf(ReadableStreamPrototype, source)) {
    if (source.consumed) throw new TypeError("the Response body has already been used");
    source.consumed = true;
    return { status, headerList, body: source.body, stream: null };
  }
  if (source.locked) throw new TypeError("the Response body stream is locked or already used");
  return { status, headerList, body: null, stream: source };
}

/** Sends the handler's result, or the error that it is not a Response. */
function respond(rid, response, describeError) {
  try {
    if (!ObjectPrototypeIsPrototypeOf(ResponsePrototype, response)) {
      throw new TypeError(
        `the fetch handler returned ${response === null ? "null" : typeof response}, not a Response`,
      );
    }
    const peer = webSocketPeerOf(response);
    if (peer !== undefined) {
      op_serve_respond_websocket(rid, peer, toInnerResponse(response).headerList);
      return;
    }
    const { status, headerList, body, stream } = responseParts(response);
    if (stream !== null) {
      streamResponse(rid, status, headerList, stream, describeError);
    } else if (typeof body === "string") {
      op_serve_respond_text(rid, status, headerList, body);
    } else {
      op_serve_respond_static(rid, status, headerList, body);
    }
  } catch (err) {
    op_serve_fail(rid, describeError(err));
  }
}

async function streamResponse(rid, status, headerList, source, describeError) {
  try {
    const reader = source.getReader();
    // A client that left is no worker error: stop the producer quietly.
    if (!op_serve_respond_stream(rid, status, headerList)) {
      op_serve_close_body(rid);
      await reader.cancel();
      return;
    }
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (TypedArrayPrototypeGetSymbolToStringTag(value) !== "Uint8Array") {
        throw new TypeError("a Response body stream must produce Uint8Array chunks");
      }
      if (!await op_serve_write_body(rid, value)) {
        await reader.cancel();
        break;
      }
    }
    op_serve_close_body(rid);
  } catch (err) {
    op_serve_fail(rid, describeError(err));
  }
}

async function respondWhenSettled(rid, pending, describeError) {
  let response;
  try {
    response = await pending;
  } catch (err) {
    op_serve_fail(rid, describeError(err));
    return;
  }
  respond(rid, response, describeError);
}

function serviceWorkerHandler(request, ctx) {
  const fetchEvent = new FetchEvent("fetch", { request, ctx });
  globalThis.dispatchEvent(fetchEvent);
  if (!fetchEvent.responded) {
    throw new TypeError("no \"fetch\" listener called event.respondWith()");
  }
  return fetchEvent.response;
}

/**
 * Runs the handler for one request. A handler that returns a Response (not
 * a promise) is answered in the same turn, with no promise in between.
 */
function handleOne(handle, describeError, rid, method, url, hasBody, headerText) {
  let result;
  try {
    const request = toRequest(rid, method, url, hasBody, headerText);
    result = handle(request, new ExecutionContext(describeError));
  } catch (err) {
    op_serve_fail(rid, describeError(err));
    return;
  }
  if (ObjectPrototypeIsPrototypeOf(ResponsePrototype, result)) {
    respond(rid, result, describeError);
  } else {
    respondWhenSettled(rid, PromiseResolve(result), describeError);
  }
}

/**
 * Answers the request at `at` inside its own RequestScope, the async
 * context that follows everything the handler starts (promises, timers,
 * waitUntil work, the response body's stream); subrequests count against it.
 */
function handleInScope(handle, describeError, rid, method, url, hasBody, headerText) {
  const outer = core.getAsyncContext();
  core.setAsyncContext(new RequestScope(rid));
  try {
    handleOne(handle, describeError, rid, method, url, hasBody, headerText);
  } finally {
    core.setAsyncContext(outer);
  }
}

/**
 * The function the host calls with the requests that have arrived for this
 * isolate: one request's HEAD_FIELDS values as arguments, or several
 * requests' values in one flat array (see `RequestBatch::into_args` in
 * runtime/src/ext/serve/ops.rs).
 * @param {null | ((request: Request, ctx: ExecutionContext) => Response | Promise<Response>)} handle
 *   the module form's handler, or null for the service-worker form
 */
function serveRequests(handle, describeError, scheduled = null, entrypoints = null) {
  const dispatch = handle ?? serviceWorkerHandler;
  const onScheduled = scheduled ?? serviceWorkerScheduled;
  const onRpc = entrypoints?.rpc ?? noRpc;
  const one = (rid, method, url, hasBody, headerText) => {
    if (method === SCHEDULED) scheduledInScope(onScheduled, describeError, rid, url, headerText);
    else if (method === RPC) rpcInScope(onRpc, describeError, rid, url, hasBody, headerText);
    else if (method === NAMED) {
      const space = StringPrototypeIndexOf(url, " ");
      const entrypoint = op_serve_entrypoint(rid);
      const named = (request, ctx) => entrypoints === null ? noRpc(entrypoint) : entrypoints.fetch(entrypoint, request, ctx);
      const realMethod = StringPrototypeSlice(url, 0, space);
      const realUrl = StringPrototypeSlice(url, space + 1);
      handleInScope(named, describeError, rid, realMethod, realUrl, hasBody, headerText);
    } else handleInScope(dispatch, describeError, rid, method, url, hasBody, headerText);
  };
  return (first, method, url, hasBody, headerText) => {
    if (typeof first === "number") {
      one(first, method, url, hasBody, headerText);
      return;
    }
    const heads = first;
    for (let at = 0; at < heads.length; at += HEAD_FIELDS) {
      one(heads[at], heads[at + 1], heads[at + 2], heads[at + 3], heads[at + 4]);
    }
  };
}

/**
 * Runs the scheduled handler for a cron firing inside its own
 * RequestScope, as a request's handler runs: answered 200 when it
 * completes, failed (500, logged) when it throws.
 */
function scheduledInScope(scheduled, describeError, rid, cron, timeText) {
  const outer = core.getAsyncContext();
  core.setAsyncContext(new RequestScope(rid));
  try {
    const controller = new ScheduledController(cron, Number(timeText));
    let result;
    try {
      result = scheduled(controller, new ExecutionContext(describeError));
    } catch (err) {
      op_serve_fail(rid, describeError(err));
      return;
    }
    PromiseResolve(result).then(
      () => respond(rid, new Response(null, { status: 204 }), describeError),
      (err) => op_serve_fail(rid, describeError(err)),
    );
  } finally {
    core.setAsyncContext(outer);
  }
}

/** What a worker whose default export is not an entrypoint class answers an RPC call. */
function noRpc(name) {
  throw new TypeError(
    `The RPC receiver does not implement the method "${name}": RPC needs a default export ` +
      "that extends WorkerEntrypoint",
  );
}

/** `value` V8-serialized; an error that cannot be is sent as its message. */
function serializeOutcome(value) {
  try {
    return core.serialize(value);
  } catch (err) {
    return core.serialize(new TypeError(`the RPC result could not be serialized: ${err.message}`));
  }
}

/** The RPC answer's headers: none for a result, the error mark for a throw. */
const RPC_RESULT = [];
const RPC_THREW = [["x-outpost-rpc", "error"]];
const RPC_STREAM = [["x-outpost-rpc", "stream"]];

/** `chunks` as one array of `length` bytes. */
function concat(chunks, length) {
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(length);
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    TypedArrayPrototypeSet(bytes, chunks[i], at);
    at += chunks[i].length;
  }
  return bytes;
}

/** The host's header that marks an RPC argument sent as a stream. */
const STREAM_ARGUMENT = "x-outpost-rpc-stream\n";

/**
 * An RPC call's arguments: its body, read straight from the host. When
 * argument `streamAt` is a ReadableStream, the body is the other
 * arguments' length (4 bytes, big-endian) and bytes, then the stream's
 * bytes, which it reads from the body as the method pulls them (until
 * the method's result is answered).
 */
async function rpcArguments(rid, hasBody, streamAt) {
  if (!hasBody) return [];
  const chunks = [];
  let length = 0;
  let needed = streamAt < 0 ? Infinity : 4;
  let chunk = null;
  while (length < needed && (chunk = await op_serve_read_body(rid)) !== null) {
    ArrayPrototypePush(chunks, chunk);
    length += chunk.length;
    if (needed === 4 && length >= 4) {
      const head = concat(chunks, length);
      needed = 4 + ((head[0] << 24) | (head[1] << 16) | (head[2] << 8) | head[3]) >>> 0;
    }
  }
  const bytes = concat(chunks, length);
  if (streamAt < 0) return core.deserialize(bytes);
  if (length < needed) throw new TypeError("the RPC call's arguments ended early");
  const args = core.deserialize(TypedArrayPrototypeSubarray(bytes, 4, needed));
  const rest = TypedArrayPrototypeSubarray(bytes, needed);
  args[streamAt] = new ReadableStream({
    start(controller) {
      if (rest.length > 0) controller.enqueue(rest);
    },
    async pull(controller) {
      const next = await op_serve_read_body(rid);
      if (next === null) controller.close();
      else controller.enqueue(next);
    },
  }, { highWaterMark: 0 });
  return args;
}

/**
 * Runs an RPC call inside its own RequestScope: the arguments from the
 * body, the method called, and the result (or the error it threw) sent
 * back serialized; an error is marked so the caller rethrows it. No
 * Request or Response is made: the body and the answer go straight
 * through the host's ops.
 * @param {(name: string, args: unknown[], ctx: ExecutionContext) => unknown} onRpc
 */
function rpcInScope(onRpc, describeError, rid, encodedName, hasBody, headerText) {
  const marked = StringPrototypeIndexOf(headerText, STREAM_ARGUMENT);
  const streamAt = marked < 0
    ? -1
    : Number(StringPrototypeSplit(StringPrototypeSlice(headerText, marked + STREAM_ARGUMENT.length), "\n")[0]);
  const outer = core.getAsyncContext();
  core.setAsyncContext(new RequestScope(rid));
  try {
    const ctx = new ExecutionContext(describeError);
    const answer = (headers, value) => {
      try {
        op_serve_respond_static(rid, 200, headers, serializeOutcome(value));
      } catch (err) {
        op_serve_fail(rid, describeError(err));
      }
    };
    const entrypoint = op_serve_entrypoint(rid);
    rpcArguments(rid, hasBody, streamAt)
      .then((args) => onRpc(decodeURIComponent(encodedName), args, ctx, entrypoint))
      .then(
        (value) =>
          // A ReadableStream result streams back as the answer's body.
          ObjectPrototypeIsPrototypeOf(ReadableStreamPrototype, value)
            ? respond(rid, new Response(value, { headers: RPC_STREAM }), describeError)
            : answer(RPC_RESULT, value),
        (err) => answer(RPC_THREW, err),
      );
  } finally {
    core.setAsyncContext(outer);
  }
}

/**
 * Runs the host-independent part of the request path once, while the
 * startup snapshot is built. The snapshot keeps the bytecode of every
 * function compiled here, so a worker's first request does not compile
 * them again in each new isolate.
 */
function warmUp() {
  const heads = [0, 2, "http://warm.up/path?query=1", false, "accept\n*/*\ncontent-type\ntext/plain"];
  const request = toRequest(heads[0], heads[1], heads[2], heads[3], heads[4]);
  const seen = [request.method, request.url, request.headers.get("accept"), new URL(request.url).pathname];
  new ExecutionContext((err) => String(err));
  const responses = [
    new Response(seen.join(" ")),
    new Response(JSON.stringify({ seen }), { status: 201, headers: { "content-type": "application/json" } }),
    Response.json({ seen }),
    new Response(null, { status: 204 }),
    new Response(new Uint8Array(1)),
  ];
  for (let i = 0; i < responses.length; i++) responseParts(responses[i]);
  // The dispatch path as well, for a request id the host never issued: the
  // respond op refuses it and the failure path runs, so both are compiled.
  const serve = serveRequests((req) => new Response(req.url), String, () => {});
  serve(heads);
  serve(heads[0], heads[1], heads[2], heads[3], heads[4]);
  serve(heads[0], SCHEDULED, "* * * * *", false, "0");
}

export { serveRequests, warmUp };
