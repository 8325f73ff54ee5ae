// WebSockets as workers know them: `new WebSocketPair()` whose server end the
// worker accepts and whose client end goes out in
// `new Response(null, { status: 101, webSocket: client })`, and outbound
// `new WebSocket(url)` under the worker's address policy. Frames travel
// through the host (runtime/src/ext/websocket).
import { core, primordials } from "ext:core/mod.js";
import {
  op_websocket_buffered,
  op_websocket_close,
  op_websocket_connect,
  op_websocket_next,
  op_websocket_pair,
  op_websocket_send_binary,
  op_websocket_send_text,
} from "ext:core/ops";
import { takeSubrequest } from "ext:outpost_fetch/10_outbound.js";

const {
  ArrayBufferIsView,
  ArrayBufferPrototypeGetByteLength,
  ArrayBufferPrototypeSlice,
  ArrayBufferPrototype,
  ArrayIsArray,
  ObjectDefineProperty,
  ObjectPrototypeIsPrototypeOf,
  ObjectSetPrototypeOf,
  ReflectConstruct,
  String,
  Symbol,
  TypeError,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetByteOffset,
  Uint8Array,
} = primordials;
const event = core.loadExtScript("ext:deno_web/02_event.js");
const { DOMException } = core.loadExtScript("ext:deno_web/01_dom_exception.js");
const responseMod = core.loadExtScript("ext:deno_fetch/23_response.js");

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

// Passed to the constructor by this file alone: a socket over an existing
// host resource rather than a new outbound connection.
const kInternal = Symbol("internal");
const kPeerRid = Symbol("peer rid");
const kWebSocket = Symbol("webSocket");

function bytesOf(data) {
  if (ObjectPrototypeIsPrototypeOf(ArrayBufferPrototype, data)) return new Uint8Array(data);
  if (ArrayBufferIsView(data)) {
    return new Uint8Array(
      TypedArrayPrototypeGetBuffer(data),
      TypedArrayPrototypeGetByteOffset(data),
      TypedArrayPrototypeGetByteLength(data),
    );
  }
  return null;
}

/** The bytes of `view` as an ArrayBuffer of their own. */
function ownBuffer(view) {
  const buffer = TypedArrayPrototypeGetBuffer(view);
  const offset = TypedArrayPrototypeGetByteOffset(view);
  const length = TypedArrayPrototypeGetByteLength(view);
  if (offset === 0 && length === ArrayBufferPrototypeGetByteLength(buffer)) return buffer;
  return ArrayBufferPrototypeSlice(buffer, offset, offset + length);
}

class WebSocket extends event.EventTarget {
  #rid = null;
  #readyState = CONNECTING;
  #url = "";
  #protocol = "";
  /** "server": a pair's server end; "client": a pair's client end; "outbound". */
  #role;
  #accepted = false;

  constructor(url, protocols = undefined, rid = undefined, role = undefined) {
    super();
    if (url === kInternal) {
      this.#role = role;
      if (role === "server") this.#rid = rid;
      else this[kPeerRid] = rid;
      return;
    }
    this.#role = "outbound";
    const target = new URL(String(url));
    if (target.protocol === "http:") target.protocol = "ws:";
    else if (target.protocol === "https:") target.protocol = "wss:";
    if (target.protocol !== "ws:" && target.protocol !== "wss:") {
      throw new DOMException(`${target.href} is not a ws: or wss: URL`, "SyntaxError");
    }
    if (target.hash !== "") throw new DOMException("a WebSocket URL has no fragment", "SyntaxError");
    this.#url = target.href;
    const offered = protocols === undefined ? [] : ArrayIsArray(protocols) ? protocols : [String(protocols)];
    const refusal = takeSubrequest("new WebSocket()");
    if (refusal !== null) throw refusal;
    this.#connect(offered);
  }

  async #connect(protocols) {
    try {
      const { rid, protocol } = await op_websocket_connect(this.#url, protocols);
      this.#rid = rid;
      this.#protocol = protocol;
      this.#readyState = OPEN;
      this.dispatchEvent(new event.Event("open"));
      this.#receive();
    } catch (err) {
      this.#readyState = CLOSED;
      this.dispatchEvent(new event.ErrorEvent("error", { error: err, message: err.message }));
      this.dispatchEvent(new event.CloseEvent("close", { code: 1006, reason: "", wasClean: false }));
    }
  }

  /** Starts delivering the peer's messages to this, a WebSocketPair's server end. */
  accept() {
    if (this.#role !== "server") {
      throw new TypeError("only the server end of a WebSocketPair can be accepted");
    }
    if (this.#accepted) throw new TypeError("this WebSocket has already been accepted");
    this.#accepted = true;
    this.#readyState = OPEN;
    this.#receive();
  }

  async #receive() {
    for (;;) {
      const next = await op_websocket_next(this.#rid);
      if (next.kind === "text") {
        this.dispatchEvent(new event.MessageEvent("message", { data: next.data }));
      } else if (next.kind === "binary") {
        this.dispatchEvent(new event.MessageEvent("message", { data: ownBuffer(next.data) }));
      } else {
        // A close the peer started is answered by the host.
        this.#readyState = CLOSED;
        core.tryClose(this.#rid);
        this.dispatchEvent(
          new event.CloseEvent("close", { code: next.code, reason: next.reason, wasClean: next.code !== 1006 }),
        );
        return;
      }
    }
  }

  #checkUsable() {
    if (this.#role === "client") {
      throw new TypeError("the client end of a WebSocketPair belongs in a 101 Response");
    }
    if (this.#readyState === CONNECTING) {
      throw new DOMException("the WebSocket is not open yet", "InvalidStateError");
    }
  }

  /** Sends a string (as text) or bytes (as binary). */
  send(data) {
    this.#checkUsable();
    if (this.#readyState !== OPEN) return;
    if (typeof data === "string") {
      op_websocket_send_text(this.#rid, data);
      return;
    }
    const bytes = bytesOf(data);
    if (bytes === null) throw new TypeError("WebSocket.send expects a string, an ArrayBuffer or a view of one");
    op_websocket_send_binary(this.#rid, bytes);
  }

  /** Starts the closing handshake. */
  close(code = undefined, reason = undefined) {
    if (code !== undefined) {
      code = code | 0;
      if (code !== 1000 && (code < 3000 || code > 4999)) {
        throw new DOMException(`close code ${code} is not 1000 or in 3000-4999`, "InvalidAccessError");
      }
    }
    reason = reason === undefined ? "" : String(reason);
    if (TypedArrayPrototypeGetByteLength(core.encode(reason)) > 123) {
      throw new DOMException("a close reason is at most 123 bytes", "SyntaxError");
    }
    this.#checkUsable();
    if (this.#readyState !== OPEN) return;
    this.#readyState = CLOSING;
    op_websocket_close(this.#rid, code ?? null, reason);
  }

  get readyState() {
    return this.#readyState;
  }

  get url() {
    return this.#url;
  }

  get protocol() {
    return this.#protocol;
  }

  get extensions() {
    return "";
  }

  /** Bytes sent and not yet written to the peer. */
  get bufferedAmount() {
    return this.#rid === null ? 0 : op_websocket_buffered(this.#rid);
  }

  get binaryType() {
    return "arraybuffer";
  }

  set binaryType(type) {
    if (type !== "arraybuffer") throw new TypeError("Outpost's WebSockets deliver binary messages as ArrayBuffer");
  }
}

for (const [name, value] of [["CONNECTING", CONNECTING], ["OPEN", OPEN], ["CLOSING", CLOSING], ["CLOSED", CLOSED]]) {
  ObjectDefineProperty(WebSocket, name, { value, enumerable: true });
  ObjectDefineProperty(WebSocket.prototype, name, { value, enumerable: true });
}
for (const name of ["open", "message", "close", "error"]) {
  event.defineEventHandler(WebSocket.prototype, name);
}

class WebSocketPair {
  constructor() {
    const { 0: server, 1: client } = op_websocket_pair();
    this[0] = new WebSocket(kInternal, undefined, client, "client");
    this[1] = new WebSocket(kInternal, undefined, server, "server");
  }
}

const BaseResponse = responseMod.Response;

/**
 * deno_fetch's Response, taking Workers' `webSocket` member in its init:
 * `new Response(null, { status: 101, webSocket: client })`.
 */
function Response(body = null, init = undefined) {
  if (new.target === undefined) throw new TypeError("Constructor Response requires 'new'");
  const response = new.target === Response
    ? new BaseResponse(body, init)
    : ReflectConstruct(BaseResponse, [body, init], new.target);
  const webSocket = init?.webSocket;
  if (webSocket !== undefined && webSocket !== null) {
    if (!ObjectPrototypeIsPrototypeOf(WebSocket.prototype, webSocket) || webSocket[kPeerRid] === undefined) {
      throw new TypeError("a Response's webSocket must be the client end of a WebSocketPair");
    }
    if (response.status !== 101) throw new TypeError("a Response with a webSocket must have status 101");
    response[kWebSocket] = webSocket;
  }
  return response;
}
Response.prototype = BaseResponse.prototype;
ObjectDefineProperty(BaseResponse.prototype, "constructor", {
  value: Response,
  writable: true,
  configurable: true,
});
ObjectSetPrototypeOf(Response, BaseResponse);

/** The pair client end a 101 response carries: its host resource id, or undefined. */
function webSocketPeerOf(response) {
  return response[kWebSocket]?.[kPeerRid];
}

export { Response, WebSocket, webSocketPeerOf, WebSocketPair };
