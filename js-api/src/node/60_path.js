// node:path - POSIX paths, as workerd offers them (a worker has no file
// system of its own, so `resolve` starts from "/"). path.win32 throws.
import { primordials } from "ext:core/mod.js";

const { ArrayPrototypeJoin, StringPrototypeLastIndexOf, StringPrototypeSlice, TypeError } = primordials;

function check(path, name = "path") {
  if (typeof path !== "string") throw new TypeError(`The "${name}" argument must be of type string. Received ${typeof path}`);
}

/** `path` with `.` and `..` segments worked out; `absolute` keeps `..` from rising past root. */
function normalizeSegments(path, absolute) {
  const out = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else {
      out.push(segment);
    }
  }
  return ArrayPrototypeJoin(out, "/");
}

function normalize(path) {
  check(path);
  if (path === "") return ".";
  const absolute = path[0] === "/";
  const trailing = path[path.length - 1] === "/";
  let out = normalizeSegments(path, absolute);
  if (out === "" && !absolute) out = ".";
  if (out !== "" && trailing) out += "/";
  return absolute ? `/${out}` : out;
}

function isAbsolute(path) {
  check(path);
  return path.length > 0 && path[0] === "/";
}

function join(...paths) {
  for (const path of paths) check(path);
  const joined = paths.filter((p) => p.length > 0).join("/");
  return joined === "" ? "." : normalize(joined);
}

function resolve(...paths) {
  let resolved = "";
  for (let i = paths.length - 1; i >= 0 && resolved[0] !== "/"; i--) {
    check(paths[i], `paths[${i}]`);
    if (paths[i].length === 0) continue;
    resolved = resolved === "" ? paths[i] : `${paths[i]}/${resolved}`;
  }
  return `/${normalizeSegments(resolved, true)}`;
}

function relative(from, to) {
  check(from, "from");
  check(to, "to");
  const a = resolve(from).split("/").filter(Boolean);
  const b = resolve(to).split("/").filter(Boolean);
  let same = 0;
  while (same < a.length && same < b.length && a[same] === b[same]) same++;
  return [...new Array(a.length - same).fill(".."), ...b.slice(same)].join("/");
}

function dirname(path) {
  check(path);
  if (path === "") return ".";
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  const at = StringPrototypeLastIndexOf(trimmed, "/");
  if (at === -1) return ".";
  if (at === 0) return "/";
  return StringPrototypeSlice(trimmed, 0, at);
}

function basename(path, suffix = undefined) {
  check(path);
  const trimmed = path.replace(/\/+$/, "");
  const base = StringPrototypeSlice(trimmed, StringPrototypeLastIndexOf(trimmed, "/") + 1);
  if (suffix !== undefined && base !== suffix && base.endsWith(suffix)) return base.slice(0, -suffix.length);
  return base;
}

function extname(path) {
  check(path);
  const base = basename(path);
  const dot = StringPrototypeLastIndexOf(base, ".");
  if (dot <= 0) return "";
  return StringPrototypeSlice(base, dot);
}

function parse(path) {
  check(path);
  const root = path[0] === "/" ? "/" : "";
  const base = basename(path);
  const ext = extname(path);
  let dir = dirname(path);
  if (dir === "." && !path.includes("/")) dir = "";
  return { root, dir, base, ext, name: ext ? base.slice(0, -ext.length) : base };
}

function format(parts) {
  const dir = parts.dir || parts.root || "";
  const base = parts.base || `${parts.name ?? ""}${parts.ext ?? ""}`;
  if (dir === "") return base;
  return dir === parts.root ? `${dir}${base}` : `${dir}/${base}`;
}

function toNamespacedPath(path) {
  return path;
}

function notImplemented(name) {
  return () => {
    throw new Error(`path.win32.${name}() is not implemented.`);
  };
}

const posix = {
  basename,
  delimiter: ":",
  dirname,
  extname,
  format,
  isAbsolute,
  join,
  normalize,
  parse,
  relative,
  resolve,
  sep: "/",
  toNamespacedPath,
};
const win32 = {};
for (const name of Object.keys(posix)) {
  win32[name] = typeof posix[name] === "function" ? notImplemented(name) : posix[name];
}
win32.sep = "\\";
win32.delimiter = ";";
posix.posix = posix;
posix.win32 = win32;
win32.posix = posix;
win32.win32 = win32;

export default posix;
export {
  basename,
  dirname,
  extname,
  format,
  isAbsolute,
  join,
  normalize,
  parse,
  posix,
  relative,
  resolve,
  toNamespacedPath,
  win32,
};
export const sep = "/";
export const delimiter = ":";
