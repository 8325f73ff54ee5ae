// env.ASSETS: a worker's own static assets. fetch() takes what fetch()
// takes and answers as the assets would answer the request (files, the
// HTML handling and the not-found handling; never the worker itself). The
// edge node serves them (runtime/src/ext/assets).
import { primordials } from "ext:core/mod.js";
import { op_assets_fetch } from "ext:core/ops";
import { core } from "ext:core/mod.js";

const { ArrayPrototypePush, ObjectFreeze, PromiseResolve, PromiseReject } = primordials;
const { Request } = core.loadExtScript("ext:deno_fetch/23_request.js");
const { Response } = core.loadExtScript("ext:deno_fetch/23_response.js");

// Statuses whose Response must have no body.
const NULL_BODY = [101, 103, 204, 205, 304];

function fetchAsset(input, init) {
  let request;
  try {
    request = new Request(input, init);
  } catch (err) {
    return PromiseReject(err);
  }
  const url = new URL(request.url);
  const headers = [];
  for (const [name, value] of request.headers) ArrayPrototypePush(headers, [name, value]);
  const reply = op_assets_fetch(request.method, url.pathname, url.search.slice(1), headers);
  const empty = NULL_BODY.includes(reply.status) || request.method === "HEAD";
  return PromiseResolve(new Response(empty ? null : reply.body, {
    status: reply.status,
    headers: reply.headers,
  }));
}

/** The `env` binding for a worker's assets. */
export function assetsBinding() {
  return ObjectFreeze({
    fetch: fetchAsset,
    connect() {
      throw new TypeError("an assets binding does not open sockets");
    },
  });
}
