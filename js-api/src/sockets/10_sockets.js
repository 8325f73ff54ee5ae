// cloudflare:sockets - connect(), outbound TCP as Workers offer it: a Socket
// with a readable and a writable byte stream, `opened` and `closed`,
// `close()` and `startTls()`. Each connect() is a subrequest of the request
// making it, and a request holds at most MAX_OPEN sockets at once (more
// wait for one to close). The address policy and the timeout are fetch()'s,
// applied by op_sockets_connect.
import { core, primordials } from "ext:core/mod.js";
import {
  op_sockets_connect,
  op_sockets_read,
  op_sockets_shutdown,
  op_sockets_start_tls,
  op_sockets_write,
} from "ext:core/ops";
import { currentRequestScope, takeSubrequest } from "ext:outpost_fetch/10_outbound.js";

const {
  ArrayBufferIsView,
  Number,
  NumberIsInteger,
  Promise,
  PromisePrototypeThen,
  String,
  StringPrototypeLastIndexOf,
  StringPrototypeSlice,
  TypeError,
  Uint8Array,
  WeakMap,
} = primordials;

/** Sockets one request may hold open at once, as on Workers. */
const MAX_OPEN = 6;
const READ_CHUNK = 64 * 1024;

/** Per request: how many sockets are open, and the connects waiting. */
class Slots {
  open = 0;
  waiting = [];
}

const slotsOfRequest = new WeakMap();

function slotsHere() {
  const scope = currentRequestScope();
  let slots = slotsOfRequest.get(scope);
  if (slots === undefined) {
    slots = new Slots();
    slotsOfRequest.set(scope, slots);
  }
  return slots;
}

function takeSlot(slots) {
  if (slots.open < MAX_OPEN) {
    slots.open++;
    return Promise.resolve();
  }
  return new Promise((resolve) => slots.waiting.push(resolve));
}

/** Hands a closed socket's slot to the next connect waiting, if any. */
function giveBack(slots) {
  const next = slots.waiting.shift();
  if (next === undefined) slots.open--;
  else next();
}

// A Socket the worker dropped without closing is closed when collected.
const unclosed = new FinalizationRegistry((held) => {
  if (held.rid !== null) core.tryClose(held.rid);
});

function parseAddress(address) {
  let hostname;
  let port;
  if (typeof address === "string") {
    const colon = StringPrototypeLastIndexOf(address, ":");
    if (colon <= 0) throw new TypeError(`connect() needs "host:port", not ${JSON.stringify(address)}`);
    hostname = StringPrototypeSlice(address, 0, colon);
    port = Number(StringPrototypeSlice(address, colon + 1));
  } else if (address !== null && typeof address === "object") {
    hostname = String(address.hostname ?? "");
    port = Number(address.port);
  } else {
    throw new TypeError('connect() takes an address: "host:port" or { hostname, port }');
  }
  if (hostname === "" || !NumberIsInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`connect() needs a host name and a port from 1 to 65535, not ${hostname}:${port}`);
  }
  return { hostname, port };
}

function bytesOf(chunk) {
  if (typeof chunk === "string") return new TextEncoder().encode(chunk);
  if (ArrayBufferIsView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  throw new TypeError("a socket's writable stream takes bytes (an ArrayBuffer or a view of one) or strings");
}

class Socket {
  /** What the finalizer closes: the resource id once connected. */
  #held = { rid: null };
  #ready;
  #opened;
  #closed;
  #resolveClosed;
  #rejectClosed;
  #readable;
  #writable;
  #secureTransport;
  #hostname;
  #allowHalfOpen;
  #slots;
  #done = false;
  #failure = undefined;
  #readEnded = false;
  #writeEnded = false;

  /**
   * @param {{ hostname: string, port: number }} address
   * @param {object} options connect()'s
   * @param {Slots} slots the request's
   * @param {() => Promise<{ rid: number, remoteAddress: string, remotePort: number }>} open
   */
  constructor(address, options, slots, open) {
    this.#hostname = address.hostname;
    this.#secureTransport = options.secureTransport;
    this.#allowHalfOpen = options.allowHalfOpen;
    this.#slots = slots;
    this.#closed = new Promise((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    this.#ready = PromisePrototypeThen(open(), (opened) => {
      if (this.#done) {
        core.tryClose(opened.rid);
        throw new TypeError("the socket was closed before it opened");
      }
      this.#held.rid = opened.rid;
      return opened;
    });
    this.#ready.catch((err) => this.#finish(err));
    this.#opened = PromisePrototypeThen(this.#ready, (opened) => ({
      remoteAddress: `${opened.remoteAddress}:${opened.remotePort}`,
      localAddress: undefined,
    }));
    this.#opened.catch(() => {});
    unclosed.register(this, this.#held, this);
    this.#readable = this.#makeReadable();
    this.#writable = this.#makeWritable();
  }

  #makeReadable() {
    return new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: READ_CHUNK,
      pull: async (controller) => {
        let count;
        try {
          const { rid } = await this.#ready;
          count = await op_sockets_read(rid, controller.byobRequest.view);
        } catch (err) {
          // close() ends a pending read as the end of the stream.
          if (!this.#done || this.#failure !== undefined) throw err;
          count = 0;
        }
        if (count === 0) {
          controller.close();
          controller.byobRequest.respond(0);
          this.#readEnded = true;
          if (!this.#allowHalfOpen) this.#shutdownWrites();
          if (this.#writeEnded) this.#finish();
        } else {
          controller.byobRequest.respond(count);
        }
      },
      cancel: () => {
        this.#readEnded = true;
        if (this.#writeEnded) this.#finish();
      },
    });
  }

  #makeWritable() {
    return new WritableStream({
      write: async (chunk) => {
        const { rid } = await this.#ready;
        await op_sockets_write(rid, bytesOf(chunk));
      },
      close: async () => {
        const { rid } = await this.#ready;
        await op_sockets_shutdown(rid);
        this.#writeEnded = true;
        if (this.#readEnded) this.#finish();
      },
      abort: () => this.close(),
    });
  }

  #shutdownWrites() {
    if (this.#writeEnded || this.#held.rid === null) return;
    this.#writeEnded = true;
    op_sockets_shutdown(this.#held.rid).catch(() => {});
  }

  /** Closes the resource, frees the request's slot and settles `closed`. */
  #finish(err = undefined) {
    if (this.#done) return;
    this.#done = true;
    this.#failure = err;
    unclosed.unregister(this);
    if (this.#held.rid !== null) core.tryClose(this.#held.rid);
    this.#held.rid = null;
    giveBack(this.#slots);
    if (err === undefined) {
      this.#resolveClosed();
    } else {
      this.#rejectClosed(err);
      this.#closed.catch(() => {});
    }
  }

  get readable() {
    return this.#readable;
  }

  get writable() {
    return this.#writable;
  }

  get opened() {
    return this.#opened;
  }

  get closed() {
    return this.#closed;
  }

  get upgraded() {
    return this.#secureTransport === "upgraded";
  }

  get secureTransport() {
    return this.#secureTransport === "upgraded" ? "on" : this.#secureTransport;
  }

  /** Closes both directions at once; resolves when closed. */
  close() {
    this.#finish();
    return this.#closed;
  }

  /**
   * A new Socket speaking TLS over this one's connection, which this one
   * gives up. Only for sockets opened with secureTransport "starttls".
   */
  startTls(options = {}) {
    if (this.#secureTransport !== "starttls" || this.#done) {
      throw new TypeError('startTls() needs an open socket made with secureTransport: "starttls"');
    }
    this.#secureTransport = "upgraded";
    const server = options?.expectedServerHostname ?? this.#hostname;
    const slots = this.#slots;
    // The new socket takes over this one's slot and subrequest.
    slots.open++;
    const upgrade = async () => {
      const { rid, remoteAddress, remotePort } = await this.#ready;
      this.#held.rid = null;
      this.#finish();
      return { rid: await op_sockets_start_tls(rid, server), remoteAddress, remotePort };
    };
    const address = { hostname: this.#hostname };
    return new Socket(address, { secureTransport: "on", allowHalfOpen: this.#allowHalfOpen }, slots, upgrade);
  }
}

/** Opens a TCP connection to `address` ("host:port" or { hostname, port }). */
function connect(address, options = undefined) {
  const target = parseAddress(address);
  const secureTransport = options?.secureTransport ?? "off";
  if (secureTransport !== "off" && secureTransport !== "on" && secureTransport !== "starttls") {
    throw new TypeError(`secureTransport must be "off", "on" or "starttls", not ${JSON.stringify(secureTransport)}`);
  }
  const refusal = takeSubrequest("connect()");
  if (refusal !== null) throw refusal;
  const slots = slotsHere();
  const open = async () => {
    await takeSlot(slots);
    return await op_sockets_connect(target.hostname, target.port, secureTransport === "on");
  };
  return new Socket(target, { secureTransport, allowHalfOpen: options?.allowHalfOpen ?? false }, slots, open);
}

export default { connect };
export { connect, Socket };
