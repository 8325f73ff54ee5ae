// deno_fetch's 26_fetch.js loads ext:deno_telemetry/telemetry.ts and
// util.ts for OpenTelemetry spans. Outpost does not ship deno_telemetry, so
// this script stands in for both: tracing is off and every hook is a no-op.
(function () {
  const { internals } = __bootstrap;
  const DID_NOT_ENTER = {};
  const noop = () => {};
  internals.__telemetry ??= {
    TRACING_ENABLED: false,
    PROPAGATORS: [],
    DID_NOT_ENTER,
    builtinTracer: noop,
    ContextManager: { active: noop },
    enterSpan: () => DID_NOT_ENTER,
    exitSpan: noop,
  };
  internals.__telemetryUtil ??= {
    updateSpanFromClientResponse: noop,
    updateSpanFromError: noop,
    updateSpanFromRequest: noop,
  };
  return {};
})();
