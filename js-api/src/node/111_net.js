// node:net - client sockets (net.connect, createConnection, Socket) over
// cloudflare:sockets' connect(), so they follow the same address policy,
// subrequest count and per-request limit. A worker cannot listen:
// createServer throws. isIP and friends are here too.
import { primordials } from "ext:core/mod.js";
import { connect as openSocket } from "node:outpost/cloudflare-sockets";
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";

const { Error, Number, NumberIsInteger, Promise, RegExpPrototypeTest, StringPrototypeLastIndexOf, StringPrototypeSlice } =
  primordials;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isIPv4(input) {
  return typeof input === "string" && RegExpPrototypeTest(IPV4, input);
}

function isIPv6(input) {
  if (typeof input !== "string" || !input.includes(":")) return false;
  try {
    return new URL(`http://[${input}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

function isIP(input) {
  if (isIPv4(input)) return 4;
  if (isIPv6(input)) return 6;
  return 0;
}

/** connect()'s arguments, in any of Node's forms, as options and a listener. */
function normalizeArgs(args) {
  let [first, second, third] = args;
  let options;
  if (first !== null && typeof first === "object") {
    options = { ...first };
    third = second;
  } else if (typeof first === "string" && !NumberIsInteger(Number(first))) {
    const err = new Error("connecting to a Unix socket path is not possible from a worker");
    err.code = "ERR_METHOD_NOT_IMPLEMENTED";
    throw err;
  } else {
    options = { port: first };
    if (typeof second === "string") options.host = second;
    else third = second;
  }
  const listener = typeof third === "function" ? third : typeof second === "function" ? second : undefined;
  return [options, listener];
}

class Socket extends Duplex {
  #socket = null;
  #writer = null;
  #wantMore = null;
  #timeout = 0;
  #timer = null;

  constructor(options = {}) {
    super({ allowHalfOpen: options.allowHalfOpen ?? false, readableHighWaterMark: options.readableHighWaterMark });
    this.connecting = false;
    this.pending = true;
    this.bytesRead = 0;
    this.bytesWritten = 0;
    this.remoteAddress = undefined;
    this.remotePort = undefined;
    this.remoteFamily = undefined;
    this.localAddress = undefined;
    this.localPort = undefined;
  }

  get readyState() {
    if (this.connecting) return "opening";
    if (this.readable && this.writable) return "open";
    if (this.readable) return "readOnly";
    if (this.writable && !this.pending) return "writeOnly";
    return "closed";
  }

  connect(...args) {
    const [options, listener] = normalizeArgs(args);
    if (listener !== undefined) this.once("connect", listener);
    const port = Number(options.port);
    const host = options.host ?? "localhost";
    this.connecting = true;
    try {
      this.#socket = openSocket({ hostname: host, port }, { allowHalfOpen: true });
    } catch (err) {
      queueMicrotask(() => this.destroy(err));
      return this;
    }
    this.#writer = this.#socket.writable.getWriter();
    this.#socket.opened.then(
      (info) => this.#connected(info.remoteAddress),
      (err) => this.destroy(err),
    );
    return this;
  }

  #connected(remote) {
    const colon = StringPrototypeLastIndexOf(remote, ":");
    const address = StringPrototypeSlice(remote, 0, colon);
    this.remoteAddress = address;
    this.remotePort = Number(StringPrototypeSlice(remote, colon + 1));
    this.remoteFamily = isIPv6(address) ? "IPv6" : "IPv4";
    this.connecting = false;
    this.pending = false;
    this.#touch();
    this.emit("connect");
    this.emit("ready");
    this.#pump();
  }

  async #pump() {
    const reader = this.#socket.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.bytesRead += value.byteLength;
        this.#touch();
        if (!this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength))) {
          await new Promise((resolve) => (this.#wantMore = resolve));
        }
      }
      this.push(null);
    } catch (err) {
      if (!this.destroyed) this.destroy(err);
    }
  }

  _read() {
    const more = this.#wantMore;
    this.#wantMore = null;
    more?.();
  }

  _write(chunk, encoding, callback) {
    if (this.#socket === null) {
      callback(new Error("This socket is not connected: call connect() first"));
      return;
    }
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, encoding) : chunk;
    this.#socket.opened
      .then(() => this.#writer.write(bytes))
      .then(() => {
        this.bytesWritten += bytes.byteLength;
        this.#touch();
        callback();
      }, callback);
  }

  _final(callback) {
    if (this.#socket === null) {
      callback();
      return;
    }
    this.#socket.opened.then(() => this.#writer.close()).then(() => callback(), callback);
  }

  _destroy(err, callback) {
    clearTimeout(this.#timer);
    this.#wantMore?.();
    this.#socket?.close();
    this.connecting = false;
    callback(err);
  }

  /** Emits "timeout" after `ms` without reads or writes (0 turns it off). */
  setTimeout(ms, callback = undefined) {
    this.#timeout = ms;
    if (callback !== undefined) {
      if (ms === 0) this.off("timeout", callback);
      else this.once("timeout", callback);
    }
    this.#touch();
    return this;
  }

  #touch() {
    clearTimeout(this.#timer);
    this.#timer = this.#timeout > 0 && !this.destroyed ? setTimeout(() => this.emit("timeout"), this.#timeout) : null;
  }

  setNoDelay() {
    return this;
  }

  setKeepAlive() {
    return this;
  }

  ref() {
    return this;
  }

  unref() {
    return this;
  }

  address() {
    return {};
  }

  resetAndDestroy() {
    return this.destroy();
  }
}

function connect(...args) {
  const [options, listener] = normalizeArgs(args);
  const socket = new Socket(options);
  if (options.timeout) socket.setTimeout(options.timeout);
  return socket.connect(options, listener);
}

function createServer() {
  const err = new Error("net.createServer is not available: a worker answers requests, it does not listen");
  err.code = "ERR_METHOD_NOT_IMPLEMENTED";
  throw err;
}

const Stream = Socket;
const createConnection = connect;

export default { connect, createConnection, createServer, isIP, isIPv4, isIPv6, Socket, Stream };
export { connect, createConnection, createServer, isIP, isIPv4, isIPv6, Socket, Stream };
