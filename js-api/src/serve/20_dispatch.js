// The per-isolate request loop: pulls requests from the host, runs the
// handler, and streams the Response back. Requests are not awaited one by
// one, so a handler waiting on a timer does not hold up the next request.
import { core, primordials } from "ext:core/mod.js";
import {
  op_serve_close_body,
  op_serve_fail,
  op_serve_next_requests,
  op_serve_read_body,
  op_serve_respond_static,
  op_serve_respond_stream,
  op_serve_write_body,
} from "ext:core/ops";
import { request as requestMod, response as responseMod, streams } from "ext:outpost_worker/00_globals.js";
import { ExecutionContext, FetchEvent } from "ext:outpost_serve/10_fetch_event.js";

const {
  ObjectPrototypeIsPrototypeOf,
  TypeError,
  TypedArrayPrototypeGetSymbolToStringTag,
  Uint8Array,
} = primordials;
const { InnerBody } = core.loadExtScript("ext:deno_fetch/22_body.js");
const { fromInnerRequest } = requestMod;
const { ResponsePrototype, toInnerResponse } = responseMod;
const { ReadableStream, ReadableStreamPrototype } = streams;

const EMPTY = new Uint8Array(0);

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
  headerListInner;
  body;
  redirectMode = "follow";
  redirectCount = 0;
  urlList;
  urlListProcessed;
  clientRid = null;
  blobUrlEntry = null;

  constructor(head, body) {
    this.methodInner = head.method;
    this.headerListInner = head.headers;
    this.body = body;
    const url = head.url;
    this.urlList = [() => url];
    this.urlListProcessed = [url];
  }

  get method() {
    return this.methodInner;
  }

  set method(value) {
    this.methodInner = value;
  }

  get headerList() {
    return this.headerListInner;
  }

  set headerList(value) {
    this.headerListInner = value;
  }

  url() {
    return this.urlListProcessed[0];
  }

  currentUrl() {
    const last = this.urlList.length - 1;
    if (this.urlListProcessed[last] === undefined) {
      this.urlListProcessed[last] = this.urlList[last]();
    }
    return this.urlListProcessed[last];
  }
}

function toRequest(head) {
  const body = head.hasBody ? new InnerBody(requestBodyStream(head.rid)) : null;
  return fromInnerRequest(new ServedInnerRequest(head, body), "immutable");
}

/**
 * Takes a Response apart for the host: its status, its header list, and its
 * body as bytes (static bodies, consumed here) or as a ReadableStream.
 */
function responseParts(response) {
  const inner = toInnerResponse(response);
  const { status, headerList } = inner;
  const body = inner.body;
  if (body === null) return { status, headerList, bytes: EMPTY, stream: null };
  const source = body.streamOrStatic;
  if (!ObjectPrototypeIsPrototypeOf(ReadableStreamPrototype, source)) {
    if (source.consumed) throw new TypeError("the Response body has already been used");
    source.consumed = true;
    const bytes = typeof source.body === "string" ? core.encode(source.body) : source.body;
    return { status, headerList, bytes, stream: null };
  }
  if (source.locked) throw new TypeError("the Response body stream is locked or already used");
  return { status, headerList, bytes: null, stream: source };
}

async function sendResponse(rid, response) {
  const { status, headerList, bytes, stream: source } = responseParts(response);
  if (source === null) {
    op_serve_respond_static(rid, status, headerList, bytes);
    return;
  }
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
}

function serviceWorkerHandler(request, ctx) {
  const fetchEvent = new FetchEvent("fetch", { request, ctx });
  globalThis.dispatchEvent(fetchEvent);
  if (!fetchEvent.responded) {
    throw new TypeError("no \"fetch\" listener called event.respondWith()");
  }
  return fetchEvent.response;
}

async function handleOne(head, handle, describeError) {
  const rid = head.rid;
  try {
    const ctx = new ExecutionContext(describeError);
    const response = await handle(toRequest(head), ctx);
    if (!ObjectPrototypeIsPrototypeOf(ResponsePrototype, response)) {
      throw new TypeError(
        `the fetch handler returned ${response === null ? "null" : typeof response}, not a Response`,
      );
    }
    await sendResponse(rid, response);
  } catch (err) {
    op_serve_fail(rid, describeError(err));
  }
}

/**
 * Serves requests until the host retires this isolate.
 * @param {null | ((request: Request, ctx: ExecutionContext) => Response | Promise<Response>)} handle
 *   the module form's handler, or null for the service-worker form
 */
async function startServing(handle, describeError) {
  const dispatch = handle ?? serviceWorkerHandler;
  while (true) {
    const heads = await op_serve_next_requests();
    if (heads === null) return;
    for (let i = 0; i < heads.length; i++) handleOne(heads[i], dispatch, describeError);
  }
}

/**
 * Runs the host-independent part of the request path once, while the
 * startup snapshot is built. The snapshot keeps the bytecode of every
 * function compiled here, so a worker's first request does not compile
 * them again in each new isolate.
 */
function warmUp() {
  const head = {
    rid: 0,
    method: "POST",
    url: "http://warm.up/path?query=1",
    headers: [["accept", "*/*"], ["content-type", "text/plain"]],
    hasBody: false,
  };
  const request = toRequest(head);
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
}

export { startServing, warmUp };
