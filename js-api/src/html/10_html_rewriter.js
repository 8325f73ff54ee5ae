// HTMLRewriter, Cloudflare's streaming HTML rewriting API. lol_html parses
// on a thread of its own (runtime/src/ext/html): at each match the host
// sends an event, the worker's handler runs (it may be async) on an object
// that records what it changes, and the changes go back to be applied.
import { core, primordials } from "ext:core/mod.js";
import {
  op_html_rewriter_check_selector,
  op_html_rewriter_end,
  op_html_rewriter_next,
  op_html_rewriter_reply,
  op_html_rewriter_start,
  op_html_rewriter_write,
} from "ext:core/ops";

const {
  ArrayPrototypeFindIndex,
  ArrayPrototypeMap,
  ArrayPrototypePush,
  ArrayPrototypeSplice,
  ArrayPrototypeValues,
  FunctionPrototypeCall,
  MapPrototypeDelete,
  MapPrototypeGet,
  MapPrototypeSet,
  ObjectPrototypeIsPrototypeOf,
  SafeMap,
  String,
  StringPrototypeToLowerCase,
  Symbol,
  TypeError,
  Uint8Array,
} = primordials;
const { ReadableStream } = core.loadExtScript("ext:deno_web/06_streams.js");
const { Headers } = core.loadExtScript("ext:deno_fetch/20_headers.js");
const { Response, ResponsePrototype } = core.loadExtScript("ext:deno_fetch/23_response.js");

// Handler kinds, as the host reads them (`kinds` in session.rs).
const ELEMENT_OR_DOCTYPE = 1;
const COMMENTS = 2;
const TEXT = 4;
const END = 8;

const kMutations = Symbol("mutations");
const kDone = Symbol("done");

function record(unit, mutation) {
  if (unit[kDone]) {
    throw new TypeError("This HTMLRewriter unit can only be changed inside its handler");
  }
  ArrayPrototypePush(unit[kMutations], mutation);
  return unit;
}

function insertion(unit, op, content, options) {
  return record(unit, { op, content: String(content), html: options?.html === true });
}

/** What every rewritable unit shares: a list of changes, closed when its handler ends. */
class Unit {
  [kMutations] = [];
  [kDone] = false;
  #removed = false;

  get removed() {
    return this.#removed;
  }

  remove() {
    record(this, { op: "remove" });
    this.#removed = true;
    return this;
  }

  before(content, options) {
    return insertion(this, "before", content, options);
  }

  after(content, options) {
    return insertion(this, "after", content, options);
  }
}

function checkName(name, what) {
  name = String(name);
  if (name === "" || /[\s"'>\/=]/.test(name)) {
    throw new TypeError(`${what} ${JSON.stringify(name)} is not a valid name`);
  }
  return name;
}

class Element extends Unit {
  #session;
  #tagName;
  #attributes;
  #namespaceURI;
  #selfClosing;
  #canHaveContent;

  constructor(event, session) {
    super();
    this.#session = session;
    this.#tagName = event.tag;
    this.#attributes = event.attributes;
    this.#namespaceURI = event.namespace;
    this.#selfClosing = event.selfClosing;
    this.#canHaveContent = event.canHaveContent;
  }

  get tagName() {
    return this.#tagName;
  }

  set tagName(name) {
    name = checkName(name, "tag name");
    record(this, { op: "setTagName", name });
    this.#tagName = StringPrototypeToLowerCase(name);
  }

  get namespaceURI() {
    return this.#namespaceURI;
  }

  get selfClosing() {
    return this.#selfClosing;
  }

  get canHaveContent() {
    return this.#canHaveContent;
  }

  /** `[name, value]` pairs, in document order. */
  get attributes() {
    return ArrayPrototypeValues(ArrayPrototypeMap(this.#attributes, ({ 0: name, 1: value }) => [name, value]));
  }

  #find(name) {
    const lower = StringPrototypeToLowerCase(String(name));
    return ArrayPrototypeFindIndex(this.#attributes, (pair) => pair[0] === lower);
  }

  getAttribute(name) {
    const at = this.#find(name);
    return at === -1 ? null : this.#attributes[at][1];
  }

  hasAttribute(name) {
    return this.#find(name) !== -1;
  }

  setAttribute(name, value) {
    name = checkName(name, "attribute name");
    value = String(value);
    record(this, { op: "setAttribute", name, value });
    const at = this.#find(name);
    if (at === -1) ArrayPrototypePush(this.#attributes, [StringPrototypeToLowerCase(name), value]);
    else this.#attributes[at][1] = value;
    return this;
  }

  removeAttribute(name) {
    name = String(name);
    record(this, { op: "removeAttribute", name });
    const at = this.#find(name);
    if (at !== -1) ArrayPrototypeSplice(this.#attributes, at, 1);
    return this;
  }

  prepend(content, options) {
    return insertion(this, "prepend", content, options);
  }

  append(content, options) {
    return insertion(this, "append", content, options);
  }

  replace(content, options) {
    return insertion(this, "replace", content, options);
  }

  setInnerContent(content, options) {
    return insertion(this, "setInnerContent", content, options);
  }

  removeAndKeepContent() {
    return record(this, { op: "removeAndKeepContent" });
  }

  /** Runs `handler` with the element's end tag when the parser reaches it. */
  onEndTag(handler) {
    if (typeof handler !== "function") throw new TypeError("onEndTag expects a function");
    if (!this.#canHaveContent || this.#selfClosing) {
      throw new TypeError(`<${this.#tagName}> has no end tag`);
    }
    const id = this.#session.nextEndTagId++;
    record(this, { op: "onEndTag", id });
    MapPrototypeSet(this.#session.endTagHandlers, id, handler);
  }
}

class EndTag extends Unit {
  #name;

  constructor(event) {
    super();
    this.#name = event.name;
  }

  get name() {
    return this.#name;
  }

  set name(name) {
    name = checkName(name, "tag name");
    record(this, { op: "setTagName", name });
    this.#name = name;
  }
}

class Text extends Unit {
  #text;
  #last;

  constructor(event) {
    super();
    this.#text = event.text;
    this.#last = event.last;
  }

  get text() {
    return this.#text;
  }

  get lastInTextNode() {
    return this.#last;
  }

  replace(content, options) {
    return insertion(this, "replace", content, options);
  }
}

class Comment extends Unit {
  #text;

  constructor(event) {
    super();
    this.#text = event.text;
  }

  get text() {
    return this.#text;
  }

  set text(text) {
    text = String(text);
    record(this, { op: "setText", text });
    this.#text = text;
  }

  replace(content, options) {
    return insertion(this, "replace", content, options);
  }
}

class Doctype {
  [kMutations] = [];
  [kDone] = false;
  #event;

  constructor(event) {
    this.#event = event;
  }

  get name() {
    return this.#event.name;
  }

  get publicId() {
    return this.#event.publicId;
  }

  get systemId() {
    return this.#event.systemId;
  }
}

class DocumentEnd {
  [kMutations] = [];
  [kDone] = false;

  append(content, options) {
    return insertion(this, "append", content, options);
  }
}

function kindsOf(handlers, first) {
  return (typeof handlers[first] === "function" ? ELEMENT_OR_DOCTYPE : 0) |
    (typeof handlers.comments === "function" ? COMMENTS : 0) |
    (typeof handlers.text === "function" ? TEXT : 0) |
    (typeof handlers.end === "function" ? END : 0);
}

function handlersFor(session, event) {
  switch (event.kind) {
    case "element":
      return { unit: new Element(event, session), calls: [[session.elements[event.on], "element"]] };
    case "endTag": {
      const handler = MapPrototypeGet(session.endTagHandlers, event.id);
      MapPrototypeDelete(session.endTagHandlers, event.id);
      return { unit: new EndTag(event), calls: [[{ handler }, "handler"]] };
    }
    case "text":
      return { unit: new Text(event), calls: ownersOf(session, event.on, "text") };
    case "comment":
      return { unit: new Comment(event), calls: ownersOf(session, event.on, "comments") };
    case "doctype":
      return { unit: new Doctype(event), calls: ownersOf(session, null, "doctype") };
    case "end":
      return { unit: new DocumentEnd(), calls: ownersOf(session, null, "end") };
    default:
      throw new TypeError(`HTMLRewriter: unexpected event ${event.kind}`);
  }
}

/** The handler objects with a `method` for a unit inside registration `on` (null: the document). */
function ownersOf(session, on, method) {
  if (on !== null) return [[session.elements[on], method]];
  const calls = [];
  for (const handlers of session.document) {
    if (typeof handlers[method] === "function") ArrayPrototypePush(calls, [handlers, method]);
  }
  return calls;
}

/** Runs the handlers for one event and answers the host. */
async function answer(session, event) {
  const { unit, calls } = handlersFor(session, event);
  try {
    for (const { 0: owner, 1: method } of calls) {
      const result = FunctionPrototypeCall(owner[method], owner, unit);
      if (result !== null && typeof result?.then === "function") await result;
    }
  } catch (err) {
    unit[kDone] = true;
    session.error = err;
    op_html_rewriter_reply(session.rid, [], `a handler threw: ${err?.message ?? String(err)}`);
    return;
  }
  unit[kDone] = true;
  op_html_rewriter_reply(session.rid, unit[kMutations], null);
}

/** Feeds the document to the rewriter as it arrives. */
async function feed(session, body) {
  if (body === null) {
    op_html_rewriter_end(session.rid, null);
    return;
  }
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!ObjectPrototypeIsPrototypeOf(Uint8Array.prototype, value)) {
        throw new TypeError("HTMLRewriter: the response body must be bytes");
      }
      if (!(await op_html_rewriter_write(session.rid, value))) {
        await reader.cancel();
        return;
      }
    }
    op_html_rewriter_end(session.rid, null);
  } catch (err) {
    session.error ??= err;
    try {
      op_html_rewriter_end(session.rid, `reading the document failed: ${err?.message ?? String(err)}`);
    } catch {
      // The session is over already.
    }
  }
}

/** Takes events until one gives output (or ends the stream). */
async function pull(session, controller) {
  for (;;) {
    const event = await op_html_rewriter_next(session.rid);
    switch (event.kind) {
      case "output":
        controller.enqueue(new Uint8Array(event.chunk));
        return;
      case "done":
        core.tryClose(session.rid);
        controller.close();
        return;
      case "failed":
        core.tryClose(session.rid);
        controller.error(session.error ?? new TypeError(`HTMLRewriter: ${event.message}`));
        return;
      default:
        await answer(session, event);
    }
  }
}

class HTMLRewriter {
  #elements = [];
  #document = [];

  /** Calls `handlers.element`, `.comments` and `.text` for what `selector` matches. */
  on(selector, handlers) {
    selector = String(selector);
    op_html_rewriter_check_selector(selector);
    if (handlers === null || typeof handlers !== "object") {
      throw new TypeError("HTMLRewriter.on expects an object of handlers");
    }
    ArrayPrototypePush(this.#elements, { selector, handlers });
    return this;
  }

  /** Calls `handlers.doctype`, `.comments`, `.text` and `.end` for the whole document. */
  onDocument(handlers) {
    if (handlers === null || typeof handlers !== "object") {
      throw new TypeError("HTMLRewriter.onDocument expects an object of handlers");
    }
    ArrayPrototypePush(this.#document, handlers);
    return this;
  }

  /** A Response like `response` whose body is rewritten as it streams. */
  transform(response) {
    if (!ObjectPrototypeIsPrototypeOf(ResponsePrototype, response)) {
      throw new TypeError("HTMLRewriter.transform expects a Response");
    }
    if (response.bodyUsed) throw new TypeError("the Response's body has already been used");
    let document = 0;
    for (const handlers of this.#document) document |= kindsOf(handlers, "doctype");
    const plan = {
      elements: ArrayPrototypeMap(this.#elements, ({ selector, handlers }) => [
        selector,
        kindsOf(handlers, "element") & ~END,
      ]),
      document,
    };
    const session = {
      rid: op_html_rewriter_start(plan),
      elements: ArrayPrototypeMap(this.#elements, ({ handlers }) => handlers),
      document: [...this.#document],
      endTagHandlers: new SafeMap(),
      nextEndTagId: 0,
      error: undefined,
    };
    feed(session, response.body);
    const body = new ReadableStream({
      pull: (controller) => pull(session, controller),
      cancel: () => core.tryClose(session.rid),
    }, { highWaterMark: 0 });
    const headers = new Headers(response.headers);
    headers.delete("content-length");
    return new Response(body, { status: response.status, statusText: response.statusText, headers });
  }
}

export { HTMLRewriter };
