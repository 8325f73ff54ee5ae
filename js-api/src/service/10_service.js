// Service bindings ([[services]]): env.AUTH.fetch() and env.AUTH.method()
// reach another worker on the same node. Each call is a subrequest of the
// request being handled, and goes straight to the host
// (runtime/src/ext/service): no outbound fetch() and, for RPC, no Request
// or Response on this side.
//
// A dispatch namespace ([[dispatch_namespaces]]) is the same stub per user
// worker: env.DISPATCHER.get(name, args, { limits }) names the worker and
// the limits its calls run under.
import { core, primordials } from "ext:core/mod.js";
import { op_service_fetch, op_service_rpc } from "ext:core/ops";
import { currentRequestRid, takeSubrequest } from "ext:outpost_fetch/10_outbound.js";

const {
  ArrayPrototypeIncludes,
  ArrayPrototypePush,
  JSONStringify,
  MapPrototypeGet,
  MapPrototypeSet,
  MathFloor,
  MathMin,
  NumberIsFinite,
  ObjectFreeze,
  ObjectHasOwn,
  ObjectPrototypeIsPrototypeOf,
  PromisePrototypeThen,
  PromiseReject,
  Proxy,
  RangeError,
  SafeMap,
  String,
  StringPrototypeSplit,
  TypeError,
} = primordials;
const { Request, RequestPrototype, toInnerRequest } = core.loadExtScript(
  "ext:deno_fetch/23_request.js",
);
const { headerListFromHeaders } = core.loadExtScript("ext:deno_fetch/20_headers.js");
const { fromInnerResponse, newInnerResponse } = core.loadExtScript("ext:deno_fetch/23_response.js");
const { InnerBody } = core.loadExtScript("ext:deno_fetch/22_body.js");
const { readableStreamForRid, ReadableStreamPrototype, resourceForReadableStream } = core
  .loadExtScript("ext:deno_web/06_streams.js");

// What op_service_rpc's answer is (its `RpcAnswer` kinds).
const RPC_THREW = 1;
const RPC_STREAM = 2;

// Statuses whose Response must have no body.
const NULL_BODY = [101, 103, 204, 205, 304];

/** A header list as `name\nvalue` lines for the host (no header holds a newline). */
function headerText(list) {
  let text = "";
  for (let i = 0; i < list.length; i++) {
    text += i === 0 ? `${list[i][0]}\n${list[i][1]}` : `\n${list[i][0]}\n${list[i][1]}`;
  }
  return text;
}

/** The host's `name\nvalue` lines as pairs. */
function headerPairs(text) {
  const pairs = [];
  if (text === "") return pairs;
  const parts = StringPrototypeSplit(text, "\n");
  for (let i = 0; i + 1 < parts.length; i += 2) ArrayPrototypePush(pairs, [parts[i], parts[i + 1]]);
  return pairs;
}

/**
 * Where a stub's calls go: a service binding, or a user worker of the
 * dispatch namespace bound as `binding`, with the limits its calls run
 * under (-1: the worker's own).
 */
class Target {
  constructor(binding, worker = null, cpuMs = -1, subRequests = -1) {
    // What the host takes: `<binding>/<worker>` for a user worker (no
    // binding name holds a `/`).
    this.name = worker === null ? binding : `${binding}/${worker}`;
    this.cpuMs = cpuMs;
    this.subRequests = subRequests;
    this.label = worker === null ? `env.${binding}` : `env.${binding}.get(${JSONStringify(worker)})`;
    this.fetchLabel = `${this.label}.fetch()`;
  }
}

/**
 * A request to the worker `target` names, answered as fetch() would be
 * (no redirects followed: the callee's answer is the answer).
 * @param {Target} target
 * @param {RequestInfo} input
 * @param {RequestInit} [init]
 */
function serviceFetch(target, input, init) {
  // A Request handed on as it is (a dispatcher's case) is sent as it is:
  // its body goes to the callee either way.
  const request = init === undefined && ObjectPrototypeIsPrototypeOf(RequestPrototype, input)
    ? input
    : new Request(input, init);
  const refusal = takeSubrequest(target.fetchLabel);
  if (refusal !== null) throw refusal;
  const body = request.body === null ? null : resourceForReadableStream(request.body);
  // A request the host handed in whose headers were never read has them
  // still as the host's text (the serve path's ServedInnerRequest): they
  // go on as they came.
  const inner = toInnerRequest(request);
  const sent = inner.headerListInner === null && typeof inner.headerText === "string"
    ? inner.headerText
    : headerText(headerListFromHeaders(request.headers));
  const method = request.method;
  const answered = op_service_fetch(
    target.name,
    target.cpuMs,
    target.subRequests,
    currentRequestRid(),
    method,
    request.url,
    sent,
    body,
  );
  return PromisePrototypeThen(answered, (answer) => toResponse(answer, method));
}

/**
 * The callee's answer as fetch() answers: headers immutable, and already
 * valid (the host checked them), so the Response is built from its parts.
 */
function toResponse(answer, method) {
  const { 0: status, 1: answerHeaders, 2: bytes, 3: stream } = answer;
  const inner = newInnerResponse(status);
  inner.headerList = headerPairs(answerHeaders);
  if (!ArrayPrototypeIncludes(NULL_BODY, status) && method !== "HEAD") {
    if (stream === null) {
      inner.body = new InnerBody({ body: bytes, consumed: false });
      inner.body.source = bytes;
      inner.body.length = bytes.byteLength;
    } else {
      inner.body = new InnerBody(readableStreamForRid(stream));
    }
  }
  return fromInnerResponse(inner, "immutable");
}

/**
 * Calls method `name` of the entrypoint of the worker `target` names with
 * `args`, which travel V8-serialized (structured clone); the result comes
 * back the same way, and an error the method threw is rethrown here.
 */
async function rpcCall(target, name, label, args) {
  const refusal = takeSubrequest(label);
  if (refusal !== null) throw refusal;
  // One argument may be a ReadableStream: it streams to the callee behind
  // the others, which go serialized.
  let streamAt = -1;
  for (let i = 0; i < args.length; i++) {
    if (!ObjectPrototypeIsPrototypeOf(ReadableStreamPrototype, args[i])) continue;
    if (streamAt !== -1) {
      throw new TypeError(`${label}: only one argument may be a ReadableStream`);
    }
    streamAt = i;
  }
  let body = -1;
  if (streamAt !== -1) {
    body = resourceForReadableStream(args[streamAt]);
    args[streamAt] = null;
  }
  const { 0: kind, 1: bytes, 2: stream } = await op_service_rpc(
    target.name,
    target.cpuMs,
    target.subRequests,
    currentRequestRid(),
    encodeURIComponent(name),
    core.serialize(args),
    body,
    streamAt,
  );
  if (kind === RPC_STREAM) return readableStreamForRid(stream);
  const value = core.deserialize(bytes);
  if (kind === RPC_THREW) throw value;
  return value;
}

/**
 * A stub for the worker `target` names: `fetch()` sends it a request; any
 * other method calls the method of that name on its entrypoint (RPC).
 * @param {Target} target
 */
function stub(target) {
  const methods = { __proto__: null };
  const stub = {
    fetch(input, init = undefined) {
      try {
        return serviceFetch(target, input, init);
      } catch (err) {
        return PromiseReject(err);
      }
    },
    connect() {
      throw new TypeError("connect() over a service binding is not supported");
    },
  };
  return new Proxy(ObjectFreeze(stub), {
    get(own, name) {
      if (typeof name !== "string" || name === "then") return own[name];
      if (ObjectHasOwn(own, name)) return own[name];
      if (methods[name] === undefined) {
        const label = `${target.label}.${name}()`;
        methods[name] = (...args) => rpcCall(target, name, label, args);
      }
      return methods[name];
    },
  });
}

/** The `env` binding for service `binding`. */
export function serviceBinding(binding) {
  return stub(new Target(binding));
}

/**
 * A limit of `get()`'s options as the host takes it: a whole number up to
 * 2^31 - 1, or -1 when not given.
 */
function limitOf(limits, key) {
  const value = limits?.[key];
  if (value === undefined || value === null) return -1;
  if (typeof value !== "number" || !NumberIsFinite(value) || value < 0) {
    throw new RangeError(`limits.${key} must be a number of 0 or more, not ${String(value)}`);
  }
  return MathMin(MathFloor(value), 0x7fffffff);
}

/**
 * The `env` binding for the dispatch namespace bound as `binding`:
 * `get(name, args, { limits: { cpuMs, subRequests } })` gives a stub for
 * user worker `name`, whose calls run under those limits (each only ever
 * lowering the user worker's own). A name the namespace does not hold
 * fails on the first call, with an error whose message starts "Worker
 * not found". `args` are accepted and not passed on.
 */
export function dispatchNamespace(binding) {
  // A dispatcher calls get() on every request: its stubs are kept, by
  // name and limits, up to STUBS_KEPT of them.
  let stubs = new SafeMap();
  return ObjectFreeze({
    get(name, args = undefined, options = undefined) {
      if (typeof name !== "string" || name === "") {
        throw new TypeError(`env.${binding}.get() needs a user worker's name`);
      }
      const limits = options?.limits;
      const cpuMs = limitOf(limits, "cpuMs");
      const subRequests = limitOf(limits, "subRequests");
      const key = `${cpuMs} ${subRequests} ${name}`;
      let found = MapPrototypeGet(stubs, key);
      if (found === undefined) {
        if (stubs.size >= STUBS_KEPT) stubs = new SafeMap();
        found = stub(new Target(binding, name, cpuMs, subRequests));
        MapPrototypeSet(stubs, key, found);
      }
      return found;
    },
  });
}

/** How many stubs a dispatch namespace binding keeps for reuse. */
const STUBS_KEPT = 1024;
