// node:fs (less `promises`, which 109_fs.js adds from 108_fs_promises.js) -
// Node's file system API over the tree of 105_fs_tree.js: the
// worker's own modules read-only under /bundle, per-request files in
// memory under /tmp, and /dev/null. Synchronous calls, their callback
// forms, file descriptors, Stats and Dirents; streams are in 106_fs_streams.js.
// Links and watching are not offered (EPERM, ERR_METHOD_NOT_IMPLEMENTED).
import { primordials } from "ext:core/mod.js";
import {
  areaOf,
  bytesOf,
  checkWritable,
  close as closeFd,
  create,
  fsError,
  invalidArg,
  list,
  lookup,
  moveTree,
  open as openFd,
  opened,
  optionsOf,
  parentFolder,
  read as readFd,
  readAll,
  removeTree,
  toPath,
  write as writeFd,
} from "ext:outpost_node/105_fs_tree.js";
import { createReadStream, createWriteStream, ReadStream, WriteStream } from "ext:outpost_node/106_fs_streams.js";
import { Buffer } from "node:buffer";
import path from "node:path";

const {
  ArrayBufferIsView,
  BigInt,
  Date,
  DateNow,
  Error,
  MathCeil,
  MathFloor,
  MathMin,
  Number,
  ObjectSetPrototypeOf,
  TypeError,
  Uint8Array,
} = primordials;

const constants = {
  F_OK: 0,
  R_OK: 4,
  W_OK: 2,
  X_OK: 1,
  O_RDONLY: 0,
  O_WRONLY: 1,
  O_RDWR: 2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_TRUNC: 0o1000,
  O_APPEND: 0o2000,
  O_SYNC: 0o4010000,
  O_DSYNC: 0o10000,
  O_DIRECTORY: 0o200000,
  O_NOFOLLOW: 0o400000,
  S_IFMT: 0o170000,
  S_IFREG: 0o100000,
  S_IFDIR: 0o40000,
  S_IFCHR: 0o20000,
  S_IFLNK: 0o120000,
  COPYFILE_EXCL: 1,
  COPYFILE_FICLONE: 2,
  COPYFILE_FICLONE_FORCE: 4,
  UV_FS_COPYFILE_EXCL: 1,
};


function notImplemented(name) {
  return () => {
    const err = new Error(`fs.${name} is not implemented in Outpost: a worker has no file system to watch or link in`);
    err.code = "ERR_METHOD_NOT_IMPLEMENTED";
    throw err;
  };
}



function encoded(bytes, encoding) {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return encoding && encoding !== "buffer" ? buffer.toString(encoding) : buffer;
}

class Stats {
  constructor(found) {
    this.dev = 0;
    this.mode = found.mode;
    this.nlink = 1;
    this.uid = 0;
    this.gid = 0;
    this.rdev = 0;
    this.blksize = 4096;
    this.ino = found.ino;
    this.size = found.size;
    this.blocks = MathCeil(found.size / 512);
    this.atimeMs = found.atimeMs;
    this.mtimeMs = found.mtimeMs;
    this.ctimeMs = found.ctimeMs;
    this.birthtimeMs = found.birthtimeMs;
    this.atime = new Date(found.atimeMs);
    this.mtime = new Date(found.mtimeMs);
    this.ctime = new Date(found.ctimeMs);
    this.birthtime = new Date(found.birthtimeMs);
  }

  isFile() {
    return (Number(this.mode) & 0o170000) === 0o100000;
  }

  isDirectory() {
    return (Number(this.mode) & 0o170000) === 0o40000;
  }

  isCharacterDevice() {
    return (Number(this.mode) & 0o170000) === 0o20000;
  }

  isSymbolicLink() {
    return false;
  }

  isBlockDevice() {
    return false;
  }

  isFIFO() {
    return false;
  }

  isSocket() {
    return false;
  }
}

/** Stats with every number a BigInt, as `{ bigint: true }` asks. */
function bigintStats(stats) {
  for (const key of ["dev", "mode", "nlink", "uid", "gid", "rdev", "blksize", "ino", "size", "blocks"]) {
    stats[key] = BigInt(stats[key]);
  }
  for (const time of ["atime", "mtime", "ctime", "birthtime"]) {
    const ms = stats[`${time}Ms`];
    stats[`${time}Ms`] = BigInt(MathFloor(ms));
    stats[`${time}Ns`] = BigInt(MathFloor(ms)) * 1000000n;
  }
  return stats;
}

class Dirent {
  #kind;

  constructor(name, parentPath, kind) {
    this.name = name;
    this.parentPath = parentPath;
    this.path = parentPath;
    this.#kind = kind;
  }

  isFile() {
    return this.#kind === "file";
  }

  isDirectory() {
    return this.#kind === "dir";
  }

  isCharacterDevice() {
    return this.#kind === "char";
  }

  isSymbolicLink() {
    return false;
  }

  isBlockDevice() {
    return false;
  }

  isFIFO() {
    return false;
  }

  isSocket() {
    return false;
  }
}

function statSync(file, options = undefined) {
  const where = toPath(file);
  const found = lookup(where);
  if (found === null) {
    if (options?.throwIfNoEntry === false) return undefined;
    throw fsError("ENOENT", "stat", where);
  }
  const stats = new Stats(found);
  return options?.bigint ? bigintStats(stats) : stats;
}

function lstatSync(file, options = undefined) {
  return statSync(file, options);
}

function fstatSync(fd, options = undefined) {
  const file = opened(fd, "fstat");
  const found = lookup(file.path);
  if (found === null) throw fsError("EBADF", "fstat");
  const stats = new Stats(found);
  return options?.bigint ? bigintStats(stats) : stats;
}

function existsSync(file) {
  try {
    return lookup(toPath(file)) !== null;
  } catch {
    return false;
  }
}

function accessSync(file, mode = constants.F_OK) {
  const where = toPath(file);
  const found = lookup(where);
  if (found === null) throw fsError("ENOENT", "access", where);
  if (mode & constants.W_OK && found.kind !== "char" && areaOf(where) !== "tmp") throw fsError("EROFS", "access", where);
  if (mode & constants.X_OK && found.kind === "file" && !(found.mode & 0o111)) throw fsError("EACCES", "access", where);
}

function readFileSync(file, options = undefined) {
  const { encoding, flag } = optionsOf(options, { flag: "r" });
  if (typeof file === "number") {
    const chunks = [];
    const chunk = new Uint8Array(64 * 1024);
    let count;
    while ((count = readFd(file, chunk, 0, chunk.length, null)) > 0) chunks.push(chunk.slice(0, count));
    return encoded(Buffer.concat(chunks), encoding);
  }
  const where = toPath(file);
  if (flag !== "r") {
    const fd = openFd(where, flag);
    try {
      return readFileSync(fd, { encoding });
    } finally {
      closeFd(fd);
    }
  }
  return encoded(readAll(where, "open"), encoding);
}

function writeFileSync(file, data, options = undefined) {
  const { encoding, flag, mode } = optionsOf(options, { flag: "w", mode: 0o666 });
  const bytes = bytesOf(data, encoding);
  if (typeof file === "number") {
    writeFd(file, bytes, null);
    return;
  }
  const fd = openFd(toPath(file), flag, mode);
  try {
    writeFd(fd, bytes, null);
  } finally {
    closeFd(fd);
  }
}

function appendFileSync(file, data, options = undefined) {
  writeFileSync(file, data, optionsOf(options, { flag: "a", mode: 0o666 }));
}

function readdirSync(file, options = undefined) {
  const { encoding, withFileTypes, recursive } = optionsOf(options, {});
  const where = toPath(file);
  const out = [];
  const walk = (folder, relative) => {
    for (const name of list(folder, "scandir")) {
      const full = folder === "/" ? `/${name}` : `${folder}/${name}`;
      const shown = relative === "" ? name : `${relative}/${name}`;
      const kind = lookup(full)?.kind;
      if (withFileTypes) out.push(new Dirent(name, folder, kind));
      else out.push(encoding === "buffer" ? Buffer.from(shown) : shown);
      if (recursive && kind === "dir") walk(full, shown);
    }
  };
  walk(where, "");
  return out;
}

function mkdirSync(file, options = undefined) {
  const { recursive, mode } = typeof options === "number" ? { mode: options } : optionsOf(options, { mode: 0o777 });
  const where = toPath(file);
  if (!recursive) {
    create(where, "dir", mode ?? 0o777, "mkdir");
    return undefined;
  }
  const missing = [];
  let at = where;
  let found;
  while ((found = lookup(at)) === null) {
    missing.unshift(at);
    at = path.posix.dirname(at);
  }
  if (found.kind !== "dir") throw fsError(missing.length === 0 ? "EEXIST" : "ENOTDIR", "mkdir", where);
  for (const folder of missing) create(folder, "dir", mode ?? 0o777, "mkdir");
  return missing[0];
}

function mkdtempSync(prefix, _options = undefined) {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (;;) {
    const random = crypto.getRandomValues(new Uint8Array(6));
    let suffix = "";
    for (const byte of random) suffix += alphabet[byte % alphabet.length];
    const where = toPath(`${prefix}${suffix}`);
    if (lookup(where) === null) {
      create(where, "dir", 0o700, "mkdtemp");
      return where;
    }
  }
}

function removable(where, syscall) {
  const found = lookup(where);
  if (found === null) throw fsError("ENOENT", syscall, where);
  checkWritable(where, syscall);
  return found;
}

function rmdirSync(file, options = undefined) {
  const where = toPath(file);
  const found = removable(where, "rmdir");
  if (found.kind !== "dir") throw fsError("ENOTDIR", "rmdir", where);
  if (!options?.recursive && list(where, "rmdir").length > 0) throw fsError("ENOTEMPTY", "rmdir", where);
  removeTree(where);
}

function rmSync(file, options = undefined) {
  const where = toPath(file);
  if (lookup(where) === null && options?.force) return;
  const found = removable(where, "rm");
  if (found.kind === "dir" && !options?.recursive) throw fsError("EISDIR", "rm", where);
  removeTree(where);
}

function unlinkSync(file) {
  const where = toPath(file);
  const found = removable(where, "unlink");
  if (found.kind === "dir") throw fsError("EISDIR", "unlink", where);
  removeTree(where);
}

function renameSync(oldPath, newPath) {
  const from = toPath(oldPath, "oldPath");
  const to = toPath(newPath, "newPath");
  const found = removable(from, "rename");
  checkWritable(to, "rename");
  parentFolder(to, "rename");
  if (to === from) return;
  if (to.startsWith(`${from}/`)) throw fsError("EINVAL", "rename", from, to);
  const existing = lookup(to);
  if (existing !== null) {
    if (existing.kind === "dir" && found.kind !== "dir") throw fsError("EISDIR", "rename", from, to);
    if (existing.kind !== "dir" && found.kind === "dir") throw fsError("ENOTDIR", "rename", from, to);
    if (existing.kind === "dir" && list(to, "rename").length > 0) throw fsError("ENOTEMPTY", "rename", from, to);
    removeTree(to);
  }
  moveTree(from, to);
}

function copyFileSync(src, dest, mode = 0) {
  const from = toPath(src, "src");
  const to = toPath(dest, "dest");
  const bytes = readAll(from, "copyfile");
  if (mode & constants.COPYFILE_EXCL && lookup(to) !== null) throw fsError("EEXIST", "copyfile", from, to);
  writeFileSync(to, bytes);
}

function truncateSync(file, length = 0) {
  if (typeof file === "number") return ftruncateSync(file, length);
  const where = toPath(file);
  const found = removable(where, "open");
  if (found.kind === "dir") throw fsError("EISDIR", "open", where);
  found.entry.truncate(length);
}

function ftruncateSync(fd, length = 0) {
  const file = opened(fd, "ftruncate");
  if (!file.flags.write) throw fsError("EINVAL", "ftruncate");
  file.entry?.truncate(length);
}

function realpathSync(file, _options = undefined) {
  const where = toPath(file);
  if (lookup(where) === null) throw fsError("ENOENT", "realpath", where);
  return where;
}
realpathSync.native = realpathSync;

/** Changes an entry's mode (chmod) or owner (chown: only root exists). */
function changeEntry(syscall, change) {
  return (file, ...args) => {
    const where = typeof file === "number" ? opened(file, syscall).path : toPath(file);
    const found = removable(where, syscall);
    if (found.entry !== null) change(found.entry, ...args);
  };
}

const chmodSync = changeEntry("chmod", (entry, mode) => {
  const bits = typeof mode === "string" ? Number.parseInt(mode, 8) : Number(mode);
  entry.mode = (entry.mode & ~0o7777) | (bits & 0o7777);
  entry.ctimeMs = DateNow();
});
const chownSync = changeEntry("chown", () => {});

function timeOf(value) {
  if (value instanceof Date) return value.getTime();
  if (typeof value === "number") return value * 1000;
  if (typeof value === "string" && value !== "" && !Number.isNaN(Number(value))) return Number(value) * 1000;
  throw invalidArg("time", "must be a number, a numeric string or a Date.");
}

const utimesSync = changeEntry("utime", (entry, atime, mtime) => {
  entry.atimeMs = timeOf(atime);
  entry.mtimeMs = timeOf(mtime);
});

function openSync(file, flags = "r", mode = 0o666) {
  return openFd(toPath(file), flags, mode);
}

function closeSync(fd) {
  closeFd(fd);
}

/** readSync(fd, buffer, offset, length, position) or (fd, buffer, { offset, length, position }). */
function readSync(fd, buffer, offset = 0, length = undefined, position = null) {
  if (!ArrayBufferIsView(buffer)) throw invalidArg("buffer", "must be an instance of Buffer, TypedArray, or DataView.");
  if (typeof offset === "object" && offset !== null) ({ offset = 0, length, position = null } = offset);
  const target = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  length ??= target.length - offset;
  return readFd(fd, target, offset, MathMin(length, target.length - offset), position);
}

/** writeSync(fd, buffer, offset, length, position) or (fd, string, position, encoding). */
function writeSync(fd, data, offsetOrPosition = undefined, lengthOrEncoding = undefined, position = undefined) {
  if (typeof data === "string") return writeFd(fd, Buffer.from(data, lengthOrEncoding ?? "utf8"), offsetOrPosition);
  const bytes = bytesOf(data);
  if (typeof offsetOrPosition === "object" && offsetOrPosition !== null) {
    ({ offset: offsetOrPosition = 0, length: lengthOrEncoding, position } = offsetOrPosition);
  }
  const offset = offsetOrPosition ?? 0;
  const length = lengthOrEncoding ?? bytes.length - offset;
  return writeFd(fd, bytes.subarray(offset, offset + length), position);
}

function fsyncSync(fd) {
  opened(fd, "fsync");
}

/** The callback form of `sync`: errors of the call itself go to the callback. */
function withCallback(sync, deliver = (callback, result) => callback(null, result)) {
  return function (...args) {
    const callback = args.pop();
    if (typeof callback !== "function") throw invalidArg("cb", "must be of type function.");
    let result;
    try {
      result = sync(...args);
    } catch (err) {
      if (err?.syscall === undefined) throw err;
      queueMicrotask(() => callback(err));
      return;
    }
    queueMicrotask(() => deliver(callback, result, args));
  };
}

function exists(file, callback) {
  const found = existsSync(file);
  queueMicrotask(() => callback(found));
}

const readCallback = withCallback(readSync, (callback, count, args) => callback(null, count, args[1]));
const writeCallback = withCallback(writeSync, (callback, count, args) => callback(null, count, args[1]));


const sync = {
  accessSync,
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  fchmodSync: chmodSync,
  fchownSync: chownSync,
  fdatasyncSync: fsyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  futimesSync: utimesSync,
  lchmodSync: chmodSync,
  lchownSync: chownSync,
  lstatSync,
  lutimesSync: utimesSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
};

const callbacks = {};
for (const [name, fn] of Object.entries(sync)) {
  if (name !== "existsSync" && name !== "readSync" && name !== "writeSync") {
    callbacks[name.slice(0, -"Sync".length)] = withCallback(fn);
  }
}
callbacks.exists = exists;
callbacks.read = readCallback;
callbacks.write = writeCallback;
callbacks.realpath.native = callbacks.realpath;

const unavailable = {
  linkSync: () => {
    throw fsError("EPERM", "link");
  },
  symlinkSync: () => {
    throw fsError("EPERM", "symlink");
  },
  readlinkSync: (file) => {
    throw fsError("EINVAL", "readlink", toPath(file));
  },
  watch: notImplemented("watch"),
  watchFile: notImplemented("watchFile"),
  unwatchFile: notImplemented("unwatchFile"),
};
callbacks.link = withCallback(unavailable.linkSync);
callbacks.symlink = withCallback(unavailable.symlinkSync);
callbacks.readlink = withCallback(unavailable.readlinkSync);

const fs = {
  ...sync,
  ...callbacks,
  ...unavailable,
  constants,
  createReadStream,
  createWriteStream,
  Dirent,
  F_OK: constants.F_OK,
  R_OK: constants.R_OK,
  ReadStream,
  Stats,
  W_OK: constants.W_OK,
  WriteStream,
  X_OK: constants.X_OK,
};

const {
  access,
  appendFile,
  chmod,
  chown,
  close,
  copyFile,
  fchmod,
  fchown,
  fdatasync,
  fstat,
  fsync,
  ftruncate,
  futimes,
  lchmod,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  mkdtemp,
  open,
  read,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  rmdir,
  stat,
  symlink,
  truncate,
  unlink,
  utimes,
  write,
  writeFile,
} = callbacks;
const { linkSync, readlinkSync, symlinkSync, unwatchFile, watch, watchFile } = unavailable;
const { fchmodSync, fchownSync, fdatasyncSync, futimesSync, lchmodSync, lchownSync, lutimesSync } = sync;

export default fs;
export {
  access,
  accessSync,
  appendFile,
  appendFileSync,
  chmod,
  chmodSync,
  chown,
  chownSync,
  close,
  closeSync,
  constants,
  copyFile,
  copyFileSync,
  createReadStream,
  createWriteStream,
  Dirent,
  exists,
  existsSync,
  fchmod,
  fchmodSync,
  fchown,
  fchownSync,
  fdatasync,
  fdatasyncSync,
  fstat,
  fstatSync,
  fsync,
  fsyncSync,
  ftruncate,
  ftruncateSync,
  futimes,
  futimesSync,
  lchmod,
  lchmodSync,
  lchown,
  lchownSync,
  link,
  linkSync,
  lstat,
  lstatSync,
  lutimes,
  lutimesSync,
  mkdir,
  mkdirSync,
  mkdtemp,
  mkdtempSync,
  open,
  openSync,
  read,
  readdir,
  readdirSync,
  readFile,
  readFileSync,
  readlink,
  readlinkSync,
  readSync,
  ReadStream,
  realpath,
  realpathSync,
  rename,
  renameSync,
  rm,
  rmdir,
  rmdirSync,
  rmSync,
  stat,
  Stats,
  statSync,
  symlink,
  symlinkSync,
  truncate,
  truncateSync,
  unlink,
  unlinkSync,
  unwatchFile,
  utimes,
  utimesSync,
  watch,
  watchFile,
  write,
  writeFile,
  writeFileSync,
  writeSync,
  WriteStream,
};
