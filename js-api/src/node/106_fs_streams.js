// node:fs's streams: ReadStream and WriteStream over file descriptors of
// the tree in 105_fs_tree.js. Both are functions, as Node's are, so
// CommonJS code can still write `ReadStream.call(this, ...)`.
import { primordials } from "ext:core/mod.js";
import {
  bytesOf,
  close as closeFd,
  fsError,
  open as openFd,
  optionsOf,
  read as readFd,
  toPath,
  write as writeFd,
} from "ext:outpost_node/105_fs_tree.js";
import { Buffer } from "node:buffer";
import { Readable, Writable } from "node:stream";

const { MathMin, ObjectSetPrototypeOf, Uint8Array } = primordials;

/** The bytes of a stream chunk. */
function chunkBytes(chunk, encoding) {
  return typeof chunk === "string" ? Buffer.from(chunk, encoding) : bytesOf(chunk);
}

function ReadStream(file, options = undefined) {
  if (!(this instanceof ReadStream)) return new ReadStream(file, options);
  options = optionsOf(options, {});
  Readable.call(this, {
    highWaterMark: options.highWaterMark ?? 64 * 1024,
    encoding: options.encoding,
    autoDestroy: options.autoClose ?? true,
    signal: options.signal,
  });
  this.path = options.fd === undefined ? file : undefined;
  this.fd = options.fd ?? null;
  this.flags = options.flags ?? "r";
  this.mode = options.mode ?? 0o666;
  this.start = options.start;
  this.end = options.end ?? Infinity;
  this.pos = this.start;
  this.bytesRead = 0;
  this.pending = true;
  opening(this, () => openFd(toPath(file), this.flags, this.mode));
}
ObjectSetPrototypeOf(ReadStream.prototype, Readable.prototype);
ObjectSetPrototypeOf(ReadStream, Readable);

/** Opens a stream's file now and says so in a later turn, as Node's streams do. */
function opening(stream, openIt) {
  if (stream.fd === null) {
    try {
      stream.fd = openIt();
    } catch (err) {
      queueMicrotask(() => stream.destroy(err));
      return;
    }
  }
  queueMicrotask(() => {
    stream.pending = false;
    stream.emit("open", stream.fd);
    stream.emit("ready");
  });
}

ReadStream.prototype._read = function (size) {
  if (this.fd === null) return;
  try {
    const left = this.end - (this.pos ?? this.bytesRead + (this.start ?? 0)) + 1;
    const chunk = new Uint8Array(MathMin(size || 64 * 1024, left));
    const count = chunk.length > 0 ? readFd(this.fd, chunk, 0, chunk.length, this.pos ?? null) : 0;
    if (this.pos !== undefined) this.pos += count;
    this.bytesRead += count;
    this.push(count > 0 ? Buffer.from(chunk.buffer, 0, count) : null);
  } catch (err) {
    this.destroy(err);
  }
};

ReadStream.prototype._destroy = function (err, callback) {
  closeStreamFile(this);
  callback(err);
};

ReadStream.prototype.close = function (callback) {
  if (typeof callback === "function") this.once("close", callback);
  this.destroy();
};

function closeStreamFile(stream) {
  if (stream.fd !== null && stream.autoDestroy !== false) {
    try {
      closeFd(stream.fd);
    } catch {
      // Already closed by the worker itself.
    }
    stream.fd = null;
  }
}

function WriteStream(file, options = undefined) {
  if (!(this instanceof WriteStream)) return new WriteStream(file, options);
  options = optionsOf(options, {});
  Writable.call(this, {
    highWaterMark: options.highWaterMark,
    defaultEncoding: options.encoding ?? "utf8",
    autoDestroy: options.autoClose ?? true,
    signal: options.signal,
  });
  this.path = options.fd === undefined ? file : undefined;
  this.fd = options.fd ?? null;
  this.flags = options.flags ?? "w";
  this.mode = options.mode ?? 0o666;
  this.start = options.start;
  this.pos = this.start;
  this.bytesWritten = 0;
  this.pending = true;
  opening(this, () => openFd(toPath(file), this.flags, this.mode));
}
ObjectSetPrototypeOf(WriteStream.prototype, Writable.prototype);
ObjectSetPrototypeOf(WriteStream, Writable);

WriteStream.prototype._write = function (chunk, encoding, callback) {
  if (this.fd === null) {
    callback(fsError("EBADF", "write"));
    return;
  }
  try {
    const count = writeFd(this.fd, chunkBytes(chunk, encoding), this.pos ?? null);
    if (this.pos !== undefined) this.pos += count;
    this.bytesWritten += count;
    callback();
  } catch (err) {
    callback(err);
  }
};

WriteStream.prototype._destroy = ReadStream.prototype._destroy;

WriteStream.prototype.close = function (callback) {
  if (typeof callback === "function") this.once("close", callback);
  if (!this.writableEnded) this.end();
  else if (!this.destroyed) this.destroy();
};
WriteStream.prototype.destroySoon = WriteStream.prototype.end;

function createReadStream(file, options = undefined) {
  return new ReadStream(file, options);
}

function createWriteStream(file, options = undefined) {
  return new WriteStream(file, options);
}

export { createReadStream, createWriteStream, ReadStream, WriteStream };
