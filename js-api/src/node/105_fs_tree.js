// The file tree node:fs shows a worker. "/" holds bundle (the worker's own
// modules, read-only: op_node_fs_bundle_*), tmp (in memory and per request:
// a request sees only what it wrote, and the files go with the request;
// code outside any request shares one) and dev/null. Nothing here reaches
// the host's files. Errors carry Node's code, errno, syscall and path.
import { primordials } from "ext:core/mod.js";
import { op_node_fs_bundle_list, op_node_fs_bundle_read, op_node_fs_bundle_stat } from "ext:core/ops";
import { currentRequestScope } from "ext:outpost_fetch/10_outbound.js";
import { Buffer } from "node:buffer";
import path from "node:path";

const { ArrayBufferIsView, DateNow, Error, MathMax, MathMin, TypeError, Uint8Array, WeakMap } = primordials;

const ERRNO = {
  EPERM: [-1, "operation not permitted"],
  ENOENT: [-2, "no such file or directory"],
  EBADF: [-9, "bad file descriptor"],
  EACCES: [-13, "permission denied"],
  EEXIST: [-17, "file already exists"],
  ENOTDIR: [-20, "not a directory"],
  EISDIR: [-21, "illegal operation on a directory"],
  EINVAL: [-22, "invalid argument"],
  EMFILE: [-24, "too many open files"],
  EROFS: [-30, "read-only file system"],
  ENOTEMPTY: [-39, "directory not empty"],
};

function invalidArg(name, message) {
  const err = new TypeError(`The "${name}" argument ${message}`);
  err.code = "ERR_INVALID_ARG_TYPE";
  return err;
}

/** `data` (a string in `encoding`, or bytes) as a Uint8Array. */
function bytesOf(data, encoding) {
  if (typeof data === "string") return Buffer.from(data, encoding ?? "utf8");
  if (ArrayBufferIsView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw invalidArg("data", "must be of type string or an instance of Buffer, TypedArray, or DataView.");
}

function optionsOf(options, defaults) {
  if (options === undefined || options === null) return defaults;
  if (typeof options === "string") return { ...defaults, encoding: options };
  return { ...defaults, ...options };
}

/** An error as Node's file system calls raise them. */
function fsError(code, syscall, file = undefined, dest = undefined) {
  const [errno, text] = ERRNO[code];
  let message = `${code}: ${text}, ${syscall}`;
  if (file !== undefined) message += ` '${file}'`;
  if (dest !== undefined) message += ` -> '${dest}'`;
  const err = new Error(message);
  err.errno = errno;
  err.code = code;
  err.syscall = syscall;
  if (file !== undefined) err.path = file;
  if (dest !== undefined) err.dest = dest;
  return err;
}

/** `file` (a string, Buffer or file: URL) as an absolute, normal path. */
function toPath(file, name = "path") {
  if (file instanceof URL) {
    if (file.protocol !== "file:") {
      const err = new TypeError("The URL must be of scheme file");
      err.code = "ERR_INVALID_URL_SCHEME";
      throw err;
    }
    file = decodeURIComponent(file.pathname);
  } else if (ArrayBufferIsView(file)) {
    file = Buffer.from(file.buffer, file.byteOffset, file.byteLength).toString();
  } else if (typeof file !== "string") {
    const err = new TypeError(
      `The "${name}" argument must be of type string or an instance of Buffer or URL. Received ${typeof file}`,
    );
    err.code = "ERR_INVALID_ARG_TYPE";
    throw err;
  }
  if (file.includes("\0")) {
    const err = new TypeError(`The argument '${name}' must be a string without null bytes.`);
    err.code = "ERR_INVALID_ARG_VALUE";
    throw err;
  }
  return path.posix.resolve("/", file);
}

let nextIno = 1000;

/** A file or folder in /tmp. */
class TmpEntry {
  constructor(kind, mode) {
    const now = DateNow();
    this.kind = kind;
    this.mode = mode;
    this.bytes = kind === "file" ? new Uint8Array(0) : null;
    this.size = 0;
    this.ino = nextIno++;
    this.atimeMs = now;
    this.mtimeMs = now;
    this.ctimeMs = now;
    this.birthtimeMs = now;
  }

  /** Writes `data` at `at`, growing the file as needed. */
  write(data, at) {
    const end = at + data.length;
    if (end > this.bytes.length) {
      const grown = new Uint8Array(MathMax(end, this.bytes.length * 2));
      grown.set(this.bytes.subarray(0, this.size));
      this.bytes = grown;
    }
    this.bytes.set(data, at);
    this.size = MathMax(this.size, end);
    this.touch();
  }

  truncate(length) {
    if (length > this.bytes.length) {
      const grown = new Uint8Array(length);
      grown.set(this.bytes.subarray(0, this.size));
      this.bytes = grown;
    } else {
      this.bytes.fill(0, length);
    }
    this.size = length;
    this.touch();
  }

  touch() {
    this.mtimeMs = DateNow();
    this.ctimeMs = this.mtimeMs;
  }
}

/** One request's /tmp: entries by absolute path. */
class TmpTree {
  entries = new Map([["/tmp", new TmpEntry("dir", 0o40777)]]);
}

const tmpOfRequest = new WeakMap();
let tmpOutsideRequests = null;

/** The /tmp of the request being handled. */
function tmp() {
  const scope = currentRequestScope();
  if (scope === null) return (tmpOutsideRequests ??= new TmpTree());
  let tree = tmpOfRequest.get(scope);
  if (tree === undefined) {
    tree = new TmpTree();
    tmpOfRequest.set(scope, tree);
  }
  return tree;
}

function areaOf(file) {
  for (const area of ["bundle", "tmp", "dev"]) {
    if (file === `/${area}` || file.startsWith(`/${area}/`)) return area;
  }
  return file === "/" ? "root" : null;
}

const FIXED = { kind: "dir", mode: 0o40555, size: 0, entry: null, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, birthtimeMs: 0 };

/**
 * What is at `file`: { kind: "file" | "dir" | "char", mode, size, ino,
 * times, entry (the TmpEntry, for /tmp) }, or null.
 */
function lookup(file) {
  switch (areaOf(file)) {
    case "root":
      return { ...FIXED, ino: 1 };
    case "bundle": {
      const size = op_node_fs_bundle_stat(file.slice("/bundle/".length));
      if (size === -1) return null;
      if (size === -2) return { ...FIXED, ino: 2 };
      return { ...FIXED, kind: "file", mode: 0o100444, size, ino: 3 };
    }
    case "tmp": {
      const entry = tmp().entries.get(file);
      return entry === undefined ? null : { ...entry, entry };
    }
    case "dev":
      if (file === "/dev") return { ...FIXED, ino: 4 };
      if (file === "/dev/null") return { ...FIXED, kind: "char", mode: 0o20666, ino: 5 };
      return null;
    default:
      return null;
  }
}

/** The names in folder `file`, in order. */
function list(file, syscall) {
  const found = lookup(file);
  if (found === null) throw fsError("ENOENT", syscall, file);
  if (found.kind !== "dir") throw fsError("ENOTDIR", syscall, file);
  switch (areaOf(file)) {
    case "root":
      return ["bundle", "dev", "tmp"];
    case "bundle":
      return op_node_fs_bundle_list(file.slice("/bundle/".length)) ?? [];
    case "dev":
      return ["null"];
    default: {
      const prefix = `${file}/`;
      const names = [];
      for (const key of tmp().entries.keys()) {
        if (key.startsWith(prefix) && !key.slice(prefix.length).includes("/")) names.push(key.slice(prefix.length));
      }
      return names.sort();
    }
  }
}

/** The whole content of file `file`. */
function readAll(file, syscall) {
  const found = lookup(file);
  if (found === null) throw fsError("ENOENT", syscall, file);
  if (found.kind === "dir") throw fsError("EISDIR", syscall, file);
  if (found.kind === "char") return new Uint8Array(0);
  if (found.entry !== null) {
    found.entry.atimeMs = DateNow();
    return found.entry.bytes.slice(0, found.entry.size);
  }
  return op_node_fs_bundle_read(file.slice("/bundle/".length)) ?? new Uint8Array(0);
}

/** Throws unless `file` may be created or changed: only /tmp can be. */
function checkWritable(file, syscall) {
  if (areaOf(file) !== "tmp") throw fsError("EROFS", syscall, file);
  if (file === "/tmp") throw fsError("EPERM", syscall, file);
}

/** The TmpEntry of folder `file`'s parent, or the error. */
function parentFolder(file, syscall) {
  const parent = lookup(path.posix.dirname(file));
  if (parent === null) throw fsError("ENOENT", syscall, file);
  if (parent.kind !== "dir") throw fsError("ENOTDIR", syscall, file);
  return parent;
}

/** Adds a new file or folder at `file` in /tmp. */
function create(file, kind, mode, syscall) {
  checkWritable(file, syscall);
  const parent = parentFolder(file, syscall);
  if (parent.entry === null) throw fsError("EROFS", syscall, file);
  if (lookup(file) !== null) throw fsError("EEXIST", syscall, file);
  const entry = new TmpEntry(kind, kind === "dir" ? 0o40000 | (mode & 0o7777) : 0o100000 | (mode & 0o7777));
  tmp().entries.set(file, entry);
  parent.entry.touch();
  return entry;
}

/** Removes `file` (and, for a folder, all below it) from /tmp. */
function removeTree(file) {
  const entries = tmp().entries;
  const prefix = `${file}/`;
  for (const key of [...entries.keys()]) {
    if (key === file || key.startsWith(prefix)) entries.delete(key);
  }
}

/** Moves `from` (and all below it) to `to` in /tmp. */
function moveTree(from, to) {
  const entries = tmp().entries;
  const prefix = `${from}/`;
  for (const [key, entry] of [...entries]) {
    if (key === from || key.startsWith(prefix)) {
      entries.delete(key);
      entries.set(to + key.slice(from.length), entry);
    }
  }
}

const FLAGS = {
  r: { read: true },
  rs: { read: true },
  sr: { read: true },
  "r+": { read: true, write: true },
  "rs+": { read: true, write: true },
  "sr+": { read: true, write: true },
  w: { write: true, create: true, truncate: true },
  wx: { write: true, create: true, truncate: true, exclusive: true },
  xw: { write: true, create: true, truncate: true, exclusive: true },
  "w+": { read: true, write: true, create: true, truncate: true },
  "wx+": { read: true, write: true, create: true, truncate: true, exclusive: true },
  "xw+": { read: true, write: true, create: true, truncate: true, exclusive: true },
  a: { write: true, create: true, append: true },
  as: { write: true, create: true, append: true },
  sa: { write: true, create: true, append: true },
  ax: { write: true, create: true, append: true, exclusive: true },
  xa: { write: true, create: true, append: true, exclusive: true },
  "a+": { read: true, write: true, create: true, append: true },
  "as+": { read: true, write: true, create: true, append: true },
  "sa+": { read: true, write: true, create: true, append: true },
  "ax+": { read: true, write: true, create: true, append: true, exclusive: true },
  "xa+": { read: true, write: true, create: true, append: true, exclusive: true },
};

function parseFlags(flags) {
  if (flags === undefined || flags === null) return FLAGS.r;
  if (typeof flags === "number") {
    const access = flags & 3;
    return {
      read: access !== 1,
      write: access !== 0,
      create: (flags & 0o100) !== 0,
      exclusive: (flags & 0o200) !== 0,
      truncate: (flags & 0o1000) !== 0,
      append: (flags & 0o2000) !== 0,
    };
  }
  const parsed = FLAGS[flags];
  if (parsed === undefined) {
    const err = new TypeError(`The value "${flags}" is invalid for option "flags"`);
    err.code = "ERR_INVALID_ARG_VALUE";
    throw err;
  }
  return parsed;
}

/** An open file: what a file descriptor names. */
class OpenFile {
  constructor(file, flags, found) {
    this.path = file;
    this.flags = flags;
    this.position = 0;
    this.entry = found.entry;
    this.kind = found.kind;
    // A bundle file is read once, when opened.
    this.bytes = found.entry === null && found.kind === "file" ? readAll(file, "open") : null;
  }

  /** The bytes and size as they are now. */
  content() {
    if (this.entry !== null) return [this.entry.bytes, this.entry.size];
    if (this.bytes !== null) return [this.bytes, this.bytes.length];
    return [new Uint8Array(0), 0];
  }
}

const MAX_OPEN_FILES = 1024;
const openFiles = new Map();
let nextFd = 3;

function open(file, flags, mode = 0o666) {
  const parsed = parseFlags(flags);
  let found = lookup(file);
  if (found === null) {
    if (!parsed.create) throw fsError("ENOENT", "open", file);
    const entry = create(file, "file", mode, "open");
    found = { ...entry, entry };
  } else {
    if (parsed.create && parsed.exclusive) throw fsError("EEXIST", "open", file);
    if (found.kind === "dir" && parsed.write) throw fsError("EISDIR", "open", file);
    if (parsed.write && found.kind !== "char") checkWritable(file, "open");
    if (parsed.truncate && found.entry !== null) found.entry.truncate(0);
  }
  if (openFiles.size >= MAX_OPEN_FILES) throw fsError("EMFILE", "open", file);
  const fd = nextFd++;
  openFiles.set(fd, new OpenFile(file, parsed, found));
  return fd;
}

function opened(fd, syscall) {
  const file = typeof fd === "number" ? openFiles.get(fd) : undefined;
  if (file === undefined) throw fsError("EBADF", syscall);
  return file;
}

function close(fd) {
  opened(fd, "close");
  openFiles.delete(fd);
}

/** Reads up to `length` bytes into `target` at `offset`; from `position`, or where the file is. */
function read(fd, target, offset, length, position) {
  const file = opened(fd, "read");
  if (!file.flags.read) throw fsError("EBADF", "read");
  if (file.kind === "dir") throw fsError("EISDIR", "read");
  const [bytes, size] = file.content();
  const from = typeof position === "number" && position >= 0 ? position : file.position;
  const count = MathMax(0, MathMin(length, size - from));
  target.set(bytes.subarray(from, from + count), offset);
  if (!(typeof position === "number" && position >= 0)) file.position += count;
  return count;
}

/** Writes `data`; at `position`, or where the file is (its end when appending). */
function write(fd, data, position) {
  const file = opened(fd, "write");
  if (!file.flags.write) throw fsError("EBADF", "write");
  if (file.entry === null) return data.length;
  const explicit = typeof position === "number" && position >= 0;
  const at = file.flags.append ? file.entry.size : explicit ? position : file.position;
  file.entry.write(data, at);
  if (!explicit || file.flags.append) file.position = at + data.length;
  return data.length;
}

export {
  areaOf,
  bytesOf,
  checkWritable,
  close,
  create,
  fsError,
  invalidArg,
  list,
  lookup,
  moveTree,
  open,
  opened,
  optionsOf,
  parentFolder,
  read,
  readAll,
  removeTree,
  toPath,
  write,
};
