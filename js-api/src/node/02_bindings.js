// The worker's bindings as the modules that expose them see them: `env`
// for cloudflare:workers, and its text values as process.env. Set once per
// isolate, before the worker's modules run; only internal modules import
// the setter.

/** The worker's bindings (frozen), or an empty object before they are set. */
let env = {};

/** The text bindings (vars and secrets), as Workers fills process.env. */
const processEnv = {};

/** @param {object} bindings */
function setBindings(bindings) {
  env = bindings;
  for (const name in bindings) {
    if (typeof bindings[name] === "string") processEnv[name] = bindings[name];
  }
}

export { env, processEnv, setBindings };
