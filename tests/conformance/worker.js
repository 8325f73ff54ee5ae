// The conformance suite: checks of the Web APIs a worker expects, run inside
// a real worker. GET / answers with a report per API area: how many checks
// passed, and why each failure failed. tests/integration/conformance.rs
// compares it with expected.json; docs/compatibility.md summarises it.
import { run } from "./harness.js";
import { abort, events, messaging } from "./events.js";
import { fetchTypes } from "./fetch_types.js";
import { encoding, streams } from "./streams.js";
import { compression, url } from "./url_compression.js";
import { crypto_ } from "./crypto.js";
import { globals, wasm, workers } from "./globals.js";
import { cache } from "./cache.js";
import { html } from "./html.js";
import { outbound } from "./outbound.js";
import { servedRequest } from "./served.js";
import { websocket } from "./websocket.js";

export default {
  async fetch(request) {
    const report = await run([
      abort, events, messaging, fetchTypes, streams, encoding, url, compression, crypto_, globals, wasm,
      outbound, html, cache, websocket, servedRequest(request), workers,
    ]);
    return Response.json(report);
  },
};
