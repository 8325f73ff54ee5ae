// The worker's bindings as the modules that expose them see them: `env`
// for cloudflare:workers, and its text values as process.env. Set once per
// isolate, before the worker's modules run; only internal modules import
// the setter.

/** The worker's bindings (frozen), or an empty object before they are set. */
let env = {};

/** The text bindings (vars and secrets), as Workers fills process.env. */
const processEnv = {};

/** What runs when an isolate starts: set-up the snapshot cannot hold. */
const onStart = [];

/** Runs `fn` in each isolate as it starts, before the worker's modules. */
function atIsolateStart(fn) {
  onStart.push(fn);
}

/** @param {object} bindings */
function setBindings(bindings) {
  env = bindings;
  for (const name in bindings) {
    if (typeof bindings[name] === "string") processEnv[name] = bindings[name];
  }
  for (const fn of onStart) fn();
}

export { atIsolateStart, env, processEnv, setBindings };
