// Outbound fetch() as far as it can be checked without a server: data: URLs,
// argument errors, abort, and the address policy's refusals. The suite's
// worker runs under the default policy (public addresses only);
// tests/integration/outbound.rs covers fetch against a real origin.
import { area } from "./harness.js";

export const outbound = area("outbound-fetch");
const o = outbound.check.bind(outbound);

async function rejectsWith(promise, name, fragment = "") {
  try {
    await promise;
    return "resolved";
  } catch (err) {
    return err.name === name && err.message.includes(fragment) ? true : `${err.name}: ${err.message}`;
  }
}

o("fetch is a function of length 1", () => typeof fetch === "function" && fetch.length === 1);
o("a data: URL", async () => {
  const response = await fetch("data:text/plain;base64,aGVsbG8=");
  return response.ok && response.headers.get("content-type") === "text/plain" &&
    (await response.text()) === "hello";
});
o("a Request object as input", async () => {
  const response = await fetch(new Request("data:application/json,%7B%22a%22%3A1%7D"));
  return (await response.json()).a === 1;
});
o("no arguments is a TypeError", () => rejectsWith(fetch(), "TypeError"));
o("an invalid URL is a TypeError", () => rejectsWith(fetch("http://exa mple.com/"), "TypeError"));
o("a GET with a body is a TypeError", () => rejectsWith(fetch("data:,x", { body: "no" }), "TypeError"));
o("file: URLs are refused", () => rejectsWith(fetch("file:///etc/passwd"), "TypeError", "file: URLs"));
o("an aborted signal rejects with its reason", () => {
  const controller = new AbortController();
  controller.abort();
  return rejectsWith(fetch("http://example.com/", { signal: controller.signal }), "AbortError");
});
o("loopback is refused", () => rejectsWith(fetch("http://127.0.0.1:8080/"), "TypeError", "loopback"));
o("private ranges are refused", () => rejectsWith(fetch("http://192.168.1.1/"), "TypeError", "private"));
o("link-local (cloud metadata) is refused", () =>
  rejectsWith(fetch("http://169.254.169.254/"), "TypeError", "link-local"));
o("IPv6 loopback is refused", () => rejectsWith(fetch("http://[::1]:8080/"), "TypeError", "loopback"));
o("IPv4 in decimal form is refused", () => rejectsWith(fetch("http://2130706433/"), "TypeError", "loopback"));

// The request's scope (which subrequests count against) follows the work a
// handler starts, however it is scheduled.
const fetchesFrom = (schedule) =>
  new Promise((resolve) => schedule(() => fetch("data:,x").then(() => resolve(true), (err) => resolve(err.message))));
o("fetch from a microtask the handler queued", () => fetchesFrom((run) => queueMicrotask(run)));
o("fetch from a timer the handler set", () => fetchesFrom((run) => setTimeout(run, 1)));
o("fetch from a MessagePort message", () =>
  fetchesFrom((run) => {
    const { port1, port2 } = new MessageChannel();
    port2.onmessage = () => {
      run();
      port2.close();
    };
    port1.postMessage("go");
  }));
o("fetch from a ReadableStream's pull", async () => {
  let outcome;
  const stream = new ReadableStream({
    async pull(controller) {
      outcome = await fetch("data:,x").then(() => true, (err) => err.message);
      controller.close();
    },
  });
  await new Response(stream).text();
  return outcome;
});
