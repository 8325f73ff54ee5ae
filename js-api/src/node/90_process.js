// node:process - what of Node's process object makes sense in a worker:
// env (the worker's text bindings), nextTick, hrtime, and fixed facts
// (platform, versions, cwd "/"). It has no child processes, no exit and
// no real stdio: stdout and stderr write to the console.
import { primordials } from "ext:core/mod.js";
import { processEnv } from "ext:outpost_node/02_bindings.js";
import { EventEmitter } from "node:events";

const { BigInt, Error, MathFloor, ReflectApply } = primordials;

const process = new EventEmitter();

function hrtimeMs() {
  return performance.timeOrigin + performance.now();
}

function hrtime(previous = undefined) {
  const now = hrtimeMs();
  let seconds = MathFloor(now / 1000);
  let nanos = MathFloor((now % 1000) * 1e6);
  if (previous !== undefined) {
    seconds -= previous[0];
    nanos -= previous[1];
    if (nanos < 0) {
      seconds -= 1;
      nanos += 1e9;
    }
  }
  return [seconds, nanos];
}
hrtime.bigint = () => BigInt(MathFloor(hrtimeMs() * 1e6));

function nextTick(callback, ...args) {
  queueMicrotask(() => ReflectApply(callback, undefined, args));
}

function stream(write) {
  const out = new EventEmitter();
  out.write = (chunk, encoding, callback) => {
    write(typeof chunk === "string" ? chunk.replace(/\n$/, "") : new TextDecoder().decode(chunk).replace(/\n$/, ""));
    const done = typeof encoding === "function" ? encoding : callback;
    if (typeof done === "function") queueMicrotask(done);
    return true;
  };
  out.isTTY = false;
  out.columns = 80;
  return out;
}

Object.assign(process, {
  arch: "x64",
  argv: ["node"],
  argv0: "node",
  env: processEnv,
  execArgv: [],
  execPath: "/bin/node",
  exitCode: undefined,
  features: {},
  pid: 1,
  platform: "linux",
  ppid: 0,
  release: { name: "node" },
  title: "workerd",
  version: "v22.14.0",
  versions: { node: "22.14.0" },
  browser: false,
  cwd: () => "/",
  chdir() {
    throw new Error("process.chdir() is not supported in workers");
  },
  emitWarning(warning, type = "Warning") {
    console.warn(`${typeof warning === "string" ? type : warning.name}: ${warning?.message ?? warning}`);
  },
  exit(code = 0) {
    throw new Error(`process.exit(${code}) is not supported in workers`);
  },
  abort() {
    throw new Error("process.abort() is not supported in workers");
  },
  getBuiltinModule: undefined,
  hrtime,
  memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }),
  nextTick,
  stderr: stream((text) => console.error(text)),
  stdout: stream((text) => console.log(text)),
  umask: () => 0o22,
  // The isolate's time origin is set when its worker starts.
  uptime: () => performance.now() / 1000,
});

export default process;
const { arch, argv, cwd, emitWarning, env, exit, platform, version, versions } = process;
export { arch, argv, cwd, emitWarning, env, exit, hrtime, nextTick, platform, version, versions };
