// node:http and node:https clients on the worker's fetch(): request() and
// get() give a ClientRequest (a Writable for the body) and an
// IncomingMessage (a Readable of the response body). They go through
// fetch(), so the address policy and the subrequest limit apply. There is
// no server side: a worker answers requests through its fetch handler.
import { Buffer } from "node:buffer";
import { Readable, Writable } from "node:stream";

const STATUS_CODES = {
  100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted",
  204: "No Content", 206: "Partial Content", 301: "Moved Permanently", 302: "Found",
  303: "See Other", 304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
  400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
  405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
  413: "Payload Too Large", 415: "Unsupported Media Type", 418: "I'm a Teapot",
  422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
  501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};
const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

class Agent {
  constructor(options = {}) {
    this.options = options;
    this.keepAlive = options.keepAlive ?? false;
  }

  destroy() {}
}
const globalAgent = new Agent();

/** The response: a Readable of the body, with Node's status and header fields. */
class IncomingMessage extends Readable {
  #reader;

  constructor(response) {
    super();
    this.statusCode = response.status;
    this.statusMessage = response.statusText || STATUS_CODES[response.status] || "";
    this.headers = {};
    this.rawHeaders = [];
    for (const [name, value] of response.headers) {
      this.headers[name] = name === "set-cookie" ? response.headers.getSetCookie() : value;
      this.rawHeaders.push(name, value);
    }
    this.httpVersion = "1.1";
    this.httpVersionMajor = 1;
    this.httpVersionMinor = 1;
    this.complete = false;
    this.#reader = response.body?.getReader() ?? null;
  }

  async _read() {
    if (this.#reader === null) {
      this.complete = true;
      this.push(null);
      return;
    }
    try {
      const { value, done } = await this.#reader.read();
      if (done) {
        this.complete = true;
        this.push(null);
      } else {
        this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      }
    } catch (err) {
      this.destroy(err);
    }
  }

  setTimeout(_ms, callback) {
    if (typeof callback === "function") this.once("timeout", callback);
    return this;
  }
}

/** The request: write() its body, end() to send it. */
class ClientRequest extends Writable {
  #url;
  #options;
  #chunks = [];
  #abort = new AbortController();
  #timer = null;

  constructor(url, options, callback) {
    // Finishing the body is when the request starts, not when it is over.
    super({ autoDestroy: false });
    this.#url = url;
    this.#options = options;
    this.method = (options.method ?? "GET").toUpperCase();
    this.path = `${url.pathname}${url.search}`;
    this.host = url.hostname;
    this.protocol = url.protocol;
    this.headers = {};
    for (const [name, value] of Object.entries(options.headers ?? {})) this.setHeader(name, value);
    this.aborted = false;
    this.reusedSocket = false;
    if (typeof callback === "function") this.once("response", callback);
    if (options.signal) options.signal.addEventListener("abort", () => this.destroy(options.signal.reason), { once: true });
    if (options.timeout) this.setTimeout(options.timeout);
  }

  setHeader(name, value) {
    this.headers[String(name).toLowerCase()] = value;
    return this;
  }

  getHeader(name) {
    return this.headers[String(name).toLowerCase()];
  }

  removeHeader(name) {
    delete this.headers[String(name).toLowerCase()];
  }

  getHeaders() {
    return { ...this.headers };
  }

  hasHeader(name) {
    return String(name).toLowerCase() in this.headers;
  }

  flushHeaders() {}

  setNoDelay() {}

  setSocketKeepAlive() {}

  setTimeout(ms, callback = undefined) {
    if (typeof callback === "function") this.once("timeout", callback);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.emit("timeout"), ms);
    return this;
  }

  abort() {
    this.aborted = true;
    this.destroy();
  }

  _write(chunk, _encoding, callback) {
    this.#chunks.push(chunk);
    callback();
  }

  _final(callback) {
    callback();
    this.#send();
  }

  _destroy(err, callback) {
    clearTimeout(this.#timer);
    this.#abort.abort(err ?? new Error("socket hang up"));
    callback(err);
  }

  async #send() {
    const headers = new Headers();
    for (const [name, value] of Object.entries(this.headers)) {
      for (const one of Array.isArray(value) ? value : [value]) headers.append(name, String(one));
    }
    const auth = this.#options.auth;
    if (auth && !headers.has("authorization")) headers.set("authorization", `Basic ${btoa(auth)}`);
    const hasBody = this.#chunks.length > 0 && this.method !== "GET" && this.method !== "HEAD";
    try {
      const response = await fetch(this.#url, {
        method: this.method,
        headers,
        body: hasBody ? Buffer.concat(this.#chunks) : undefined,
        redirect: "manual",
        signal: this.#abort.signal,
      });
      clearTimeout(this.#timer);
      const message = new IncomingMessage(response);
      this.res = message;
      this.emit("response", message);
    } catch (err) {
      clearTimeout(this.#timer);
      if (!this.destroyed) this.destroy(err);
    }
  }
}

/** Node's (url, options, callback) argument forms, as one URL and options. */
function normalize(defaultProtocol, input, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  options = { ...(options ?? {}) };
  let url;
  if (typeof input === "string" || input instanceof URL) {
    url = new URL(input);
  } else {
    options = { ...input, ...options };
    const protocol = options.protocol ?? defaultProtocol;
    const host = options.hostname ?? options.host ?? "localhost";
    const port = options.port ? `:${options.port}` : "";
    url = new URL(`${protocol}//${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}${port}${options.path ?? "/"}`);
  }
  return { url, options, callback };
}

function makeModule(defaultProtocol) {
  function request(input, options = undefined, callback = undefined) {
    const args = normalize(defaultProtocol, input, options, callback);
    return new ClientRequest(args.url, args.options, args.callback);
  }
  function get(input, options = undefined, callback = undefined) {
    const req = request(input, options, callback);
    req.end();
    return req;
  }
  function createServer() {
    throw new Error("http.createServer() is not supported in workers: answer requests in the fetch handler");
  }
  return { Agent, ClientRequest, createServer, get, globalAgent, IncomingMessage, METHODS, request, STATUS_CODES };
}

const http = makeModule("http:");
const https = makeModule("https:");

export { Agent, ClientRequest, globalAgent, http, https, IncomingMessage, METHODS, STATUS_CODES };
