// deno_fetch's HttpClient (22_http_client.js) loads `loadTlsKeyPair` from
// deno_net, which Outpost does not ship: workers cannot create custom HTTP
// clients. This script stands in for ext:deno_net/02_tls.js.
(function () {
  function loadTlsKeyPair() {
    throw new TypeError("custom TLS client certificates are not available to workers");
  }
  return { loadTlsKeyPair };
})();
