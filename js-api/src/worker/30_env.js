// The worker's `env`, set once per isolate before its modules run, so that
// `import { env } from "cloudflare:workers"` sees it at the top level too.
// Only internal modules import the setter.

/** The worker's bindings (frozen), or an empty object before they are set. */
let env = {};

/** @param {object} bindings */
function setEnv(bindings) {
  env = bindings;
}

export { env, setEnv };
