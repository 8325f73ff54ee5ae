// node:fs/promises - the promise form of node:fs (107_fs.js), with
// FileHandle for open().
import fs from "ext:outpost_node/107_fs.js";

/** The promise form of a synchronous call. */
function promised(sync) {
  return (...args) => {
    try {
      return Promise.resolve(sync(...args));
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

class FileHandle {
  #fd;

  constructor(fd) {
    this.#fd = fd;
  }

  get fd() {
    return this.#fd;
  }

  read(buffer = undefined, offset = 0, length = undefined, position = null) {
    if (buffer === undefined || (typeof buffer === "object" && !ArrayBuffer.isView(buffer))) {
      ({ buffer = Buffer.alloc(16384), offset = 0, length, position = null } = buffer ?? {});
    }
    return promised(() => ({ bytesRead: fs.readSync(this.#fd, buffer, offset, length, position), buffer }))();
  }

  write(data, ...args) {
    return promised(() => ({ bytesWritten: fs.writeSync(this.#fd, data, ...args), buffer: data }))();
  }

  readFile(options = undefined) {
    return promised(fs.readFileSync)(this.#fd, options);
  }

  writeFile(data, options = undefined) {
    return promised(fs.writeFileSync)(this.#fd, data, options);
  }

  appendFile(data, options = undefined) {
    return promised(fs.writeFileSync)(this.#fd, data, options);
  }

  stat(options = undefined) {
    return promised(fs.fstatSync)(this.#fd, options);
  }

  truncate(length = 0) {
    return promised(fs.ftruncateSync)(this.#fd, length);
  }

  sync() {
    return promised(fs.fsyncSync)(this.#fd);
  }

  datasync() {
    return promised(fs.fsyncSync)(this.#fd);
  }

  close() {
    return promised(fs.closeSync)(this.#fd);
  }

  createReadStream(options = undefined) {
    return fs.createReadStream(null, { ...options, fd: this.#fd });
  }

  createWriteStream(options = undefined) {
    return fs.createWriteStream(null, { ...options, fd: this.#fd });
  }

  async [Symbol.asyncDispose]() {
    try {
      fs.closeSync(this.#fd);
    } catch {
      // Closed already.
    }
  }
}

const access = promised(fs.accessSync);
const appendFile = promised(fs.appendFileSync);
const chmod = promised(fs.chmodSync);
const chown = promised(fs.chownSync);
const copyFile = promised(fs.copyFileSync);
const lchown = promised(fs.lchownSync);
const link = promised(fs.linkSync);
const lstat = promised(fs.lstatSync);
const lutimes = promised(fs.lutimesSync);
const mkdir = promised(fs.mkdirSync);
const mkdtemp = promised(fs.mkdtempSync);
const open = promised((file, flags, mode) => new FileHandle(fs.openSync(file, flags, mode)));
const readdir = promised(fs.readdirSync);
const readFile = promised(fs.readFileSync);
const readlink = promised(fs.readlinkSync);
const realpath = promised(fs.realpathSync);
const rename = promised(fs.renameSync);
const rm = promised(fs.rmSync);
const rmdir = promised(fs.rmdirSync);
const stat = promised(fs.statSync);
const symlink = promised(fs.symlinkSync);
const truncate = promised(fs.truncateSync);
const unlink = promised(fs.unlinkSync);
const utimes = promised(fs.utimesSync);
const writeFile = promised(fs.writeFileSync);
const constants = fs.constants;

const promises = {
  access,
  appendFile,
  chmod,
  chown,
  constants,
  copyFile,
  FileHandle,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  mkdtemp,
  open,
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
  writeFile,
};
export default promises;
export {
  access,
  appendFile,
  chmod,
  chown,
  constants,
  copyFile,
  FileHandle,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  mkdtemp,
  open,
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
  writeFile,
};
