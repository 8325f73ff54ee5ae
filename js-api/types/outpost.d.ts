// TypeScript declarations for Outpost workers. The Web API types themselves
// come from TypeScript's "webworker" lib; these add the Workers-specific ones.

/** The `ctx` argument of a module worker's handlers. */
interface ExecutionContext {
  /** Keeps `promise` running after the response has been sent. */
  waitUntil(promise: Promise<unknown>): void;
  /** Accepted for compatibility; a throwing handler still gets a 500. */
  passThroughOnException(): void;
  /** Free-form properties; empty in Outpost. */
  readonly props: Record<string, unknown>;
}

/** A module worker: `export default { fetch(request, env, ctx) { … } }`. */
interface ExportedHandler<Env = Record<string, string>> {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response>;
}

/** The event a service-worker script's "fetch" listener receives. */
interface FetchEvent extends Event {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): void;
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
}

declare function addEventListener(type: "fetch", listener: (event: FetchEvent) => void): void;

/** Whether content inserted by HTMLRewriter is HTML (default: text, escaped). */
interface ContentOptions {
  html?: boolean;
}

interface HTMLRewriterElement {
  tagName: string;
  readonly attributes: IterableIterator<[string, string]>;
  readonly namespaceURI: string;
  readonly removed: boolean;
  readonly selfClosing: boolean;
  readonly canHaveContent: boolean;
  getAttribute(name: string): string | null;
  hasAttribute(name: string): boolean;
  setAttribute(name: string, value: string): this;
  removeAttribute(name: string): this;
  before(content: string, options?: ContentOptions): this;
  after(content: string, options?: ContentOptions): this;
  prepend(content: string, options?: ContentOptions): this;
  append(content: string, options?: ContentOptions): this;
  replace(content: string, options?: ContentOptions): this;
  setInnerContent(content: string, options?: ContentOptions): this;
  remove(): this;
  removeAndKeepContent(): this;
  onEndTag(handler: (tag: HTMLRewriterEndTag) => void | Promise<void>): void;
}

interface HTMLRewriterEndTag {
  name: string;
  before(content: string, options?: ContentOptions): this;
  after(content: string, options?: ContentOptions): this;
  remove(): this;
}

interface HTMLRewriterText {
  readonly text: string;
  readonly lastInTextNode: boolean;
  readonly removed: boolean;
  before(content: string, options?: ContentOptions): this;
  after(content: string, options?: ContentOptions): this;
  replace(content: string, options?: ContentOptions): this;
  remove(): this;
}

interface HTMLRewriterComment {
  text: string;
  readonly removed: boolean;
  before(content: string, options?: ContentOptions): this;
  after(content: string, options?: ContentOptions): this;
  replace(content: string, options?: ContentOptions): this;
  remove(): this;
}

interface HTMLRewriterDoctype {
  readonly name: string | null;
  readonly publicId: string | null;
  readonly systemId: string | null;
}

interface HTMLRewriterDocumentEnd {
  append(content: string, options?: ContentOptions): this;
}

interface HTMLRewriterElementHandlers {
  element?(element: HTMLRewriterElement): void | Promise<void>;
  comments?(comment: HTMLRewriterComment): void | Promise<void>;
  text?(text: HTMLRewriterText): void | Promise<void>;
}

interface HTMLRewriterDocumentHandlers {
  doctype?(doctype: HTMLRewriterDoctype): void | Promise<void>;
  comments?(comment: HTMLRewriterComment): void | Promise<void>;
  text?(text: HTMLRewriterText): void | Promise<void>;
  end?(end: HTMLRewriterDocumentEnd): void | Promise<void>;
}

/** Cloudflare's streaming HTML rewriter, on lol_html. */
declare class HTMLRewriter {
  on(selector: string, handlers: HTMLRewriterElementHandlers): HTMLRewriter;
  onDocument(handlers: HTMLRewriterDocumentHandlers): HTMLRewriter;
  transform(response: Response): Response;
}

/** Two connected WebSockets: `0` goes in a 101 Response, `1` is accepted by the worker. */
declare class WebSocketPair {
  0: WebSocket;
  1: WebSocket;
}

interface WebSocket {
  /** Starts delivering messages to a WebSocketPair's server end. */
  accept(): void;
}

interface ResponseInit {
  /** The client end of a WebSocketPair, with `status: 101`. */
  webSocket?: WebSocket;
}

interface CacheStorage {
  /** The worker's default cache. */
  readonly default: Cache;
}

/** A KV namespace bound in outpost.toml (`[[kv_namespaces]] binding = "..." id = "..."`). */
interface KVNamespaceGetOptions<Type> {
  type: Type;
  /** How long an edge may cache the answer, in seconds (at least 30; default 60). */
  cacheTtl?: number;
}

interface KVNamespacePutOptions {
  /** When the key expires, in seconds since the Unix epoch (in the future). */
  expiration?: number;
  /** How long the key lives, in seconds (at least 60). */
  expirationTtl?: number;
  /** Any JSON value, at most 1024 bytes serialised. */
  metadata?: unknown;
}

interface KVNamespaceListKey<Metadata = unknown> {
  name: string;
  expiration?: number;
  metadata?: Metadata;
}

interface KVNamespaceListResult<Metadata = unknown> {
  keys: KVNamespaceListKey<Metadata>[];
  list_complete: boolean;
  cursor?: string;
  cacheStatus: string | null;
}

interface KVNamespaceGetWithMetadataResult<Value, Metadata> {
  value: Value | null;
  metadata: Metadata | null;
  cacheStatus: "HIT" | "MISS" | null;
}

interface KVNamespace {
  get(key: string, options?: "text" | Partial<KVNamespaceGetOptions<"text">>): Promise<string | null>;
  get<T = unknown>(key: string, options: "json" | KVNamespaceGetOptions<"json">): Promise<T | null>;
  get(key: string, options: "arrayBuffer" | KVNamespaceGetOptions<"arrayBuffer">): Promise<ArrayBuffer | null>;
  get(key: string, options: "stream" | KVNamespaceGetOptions<"stream">): Promise<ReadableStream | null>;
  /** Up to 100 keys at once, as text or JSON. */
  get(keys: string[], options?: "text" | "json" | Partial<KVNamespaceGetOptions<"text" | "json">>): Promise<Map<string, unknown>>;
  getWithMetadata<Metadata = unknown>(
    key: string,
    options?: string | Partial<KVNamespaceGetOptions<string>>,
  ): Promise<KVNamespaceGetWithMetadataResult<unknown, Metadata>>;
  /** Values up to 25 MiB; keys 1 to 512 bytes, not "." or "..". */
  put(key: string, value: string | ArrayBuffer | ArrayBufferView | ReadableStream, options?: KVNamespacePutOptions): Promise<void>;
  delete(key: string): Promise<void>;
  list<Metadata = unknown>(options?: { prefix?: string; limit?: number; cursor?: string }): Promise<KVNamespaceListResult<Metadata>>;
}

/** What the edge knows of a request (`request.cf`). */
interface IncomingRequestCfProperties {
  /** The edge node's name. */
  colo: string;
  /** "HTTP/1.1", "HTTP/2" or "HTTP/3". */
  httpProtocol: string;
  /** "TLSv1.3", "TLSv1.2", or "" over plain HTTP. */
  tlsVersion: string;
  /** The connection's round-trip time in ms, over TCP. */
  clientTcpRtt?: number;
}

interface Request {
  /** Set on requests the worker is handed; undefined on ones it makes. */
  readonly cf?: IncomingRequestCfProperties;
}

interface SubtleCrypto {
  /** Compares two buffers of equal length in constant time. */
  timingSafeEqual(a: ArrayBuffer | ArrayBufferView, b: ArrayBuffer | ArrayBufferView): boolean;
}

declare const scheduler: {
  /** Resolves after `delay` milliseconds, or rejects when `signal` aborts. */
  wait(delay: number, options?: { signal?: AbortSignal }): Promise<void>;
};

declare module "cloudflare:workers" {
  /** The worker's bindings, available at the top level too. */
  export const env: Record<string, unknown>;
  /** Base of a class-based worker: a new instance per request. */
  export abstract class WorkerEntrypoint<Env = Record<string, unknown>> {
    protected ctx: ExecutionContext;
    protected env: Env;
    constructor(ctx: ExecutionContext, env: Env);
    fetch?(request: Request): Response | Promise<Response>;
  }
  export abstract class DurableObject<Env = Record<string, unknown>> {
    protected ctx: unknown;
    protected env: Env;
    constructor(ctx: unknown, env: Env);
  }
  export abstract class WorkflowEntrypoint<Env = Record<string, unknown>> {
    protected ctx: ExecutionContext;
    protected env: Env;
    constructor(ctx: ExecutionContext, env: Env);
  }
  export class RpcTarget {}
  /** Keeps `promise` running after the response; a rejection is logged. */
  export function waitUntil(promise: Promise<unknown>): void;
}

declare module "cloudflare:sockets" {
  /** Where to connect: "host:port", or the parts. */
  export type SocketAddress = string | { hostname: string; port: number };
  export interface SocketOptions {
    /** "off" (plain TCP, the default), "on" (TLS at once) or "starttls" (upgrade later). */
    secureTransport?: "off" | "on" | "starttls";
    /** Keep writing after the peer's end of stream (default false). */
    allowHalfOpen?: boolean;
  }
  export interface SocketInfo {
    /** The address connected to, "ip:port". */
    remoteAddress?: string;
    localAddress?: string;
  }
  export interface Socket {
    readonly readable: ReadableStream<Uint8Array>;
    readonly writable: WritableStream<Uint8Array | ArrayBuffer | string>;
    /** Resolves once connected; rejects if connecting fails or is refused. */
    readonly opened: Promise<SocketInfo>;
    /** Resolves when the socket closes; rejects when it fails. */
    readonly closed: Promise<void>;
    /** Whether startTls() has been called on this socket. */
    readonly upgraded: boolean;
    readonly secureTransport: "off" | "on" | "starttls";
    close(): Promise<void>;
    /** A new Socket speaking TLS over this one's connection (secureTransport "starttls" only). */
    startTls(options?: { expectedServerHostname?: string }): Socket;
  }
  /** Opens a TCP connection under the worker's outbound policy; a subrequest. */
  export function connect(address: SocketAddress, options?: SocketOptions): Socket;
}
