import { area } from "./harness.js";

/** Checks of the request a worker is handed, built from the host's. */
export function servedRequest(request) {
  const served = area("served-request");
  const s = served.check.bind(served);
  s("method and url", () => request.method === "GET" && new URL(request.url).pathname === "/");
  s("headers are immutable", () => {
    try {
      request.headers.set("x-new", "1");
      return false;
    } catch (err) {
      return err instanceof TypeError;
    }
  });
  s("headers can be read and iterated", () =>
    request.headers.get("x-conformance") === "yes" && [...request.headers.keys()].includes("x-conformance"));
  s("signal is an AbortSignal, not aborted", () => request.signal instanceof AbortSignal && !request.signal.aborted);
  s("a GET has no body", () => request.body === null && request.bodyUsed === false);
  s("clone keeps url and headers", () => {
    const copy = request.clone();
    return copy.url === request.url && copy.headers.get("x-conformance") === "yes";
  });
  s("new Request(request) has mutable headers", () => {
    const copy = new Request(request);
    copy.headers.set("x-new", "1");
    return copy.headers.get("x-new") === "1" && copy.headers.get("x-conformance") === "yes";
  });
  return served;
}
