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
