// node:stream - Readable, Writable, Duplex, Transform and PassThrough with
// Node's events and backpressure, pipe and pipeline, finished, async
// iteration, and conversion to and from Web streams. Callbacks and events
// are delivered in later microtasks, never synchronously inside the call
// that caused them, as in Node.
import { primordials } from "ext:core/mod.js";
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import { StringDecoder } from "node:string_decoder";

const {
  Error,
  FunctionPrototypeSymbolHasInstance,
  ObjectDefineProperties,
  ObjectDefineProperty,
  ObjectGetOwnPropertyDescriptors,
  ObjectSetPrototypeOf,
  Promise,
  SymbolAsyncIterator,
  SymbolHasInstance,
  SymbolIterator,
  TypeError,
} = primordials;

const DEFAULT_HIGH_WATER_MARK = 16 * 1024;
const DEFAULT_OBJECT_HIGH_WATER_MARK = 16;

function later(fn, ...args) {
  queueMicrotask(() => fn(...args));
}

function codedError(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

function sizeOf(chunk, objectMode) {
  return objectMode ? 1 : chunk.length;
}

/** The chunk a non-object stream holds: bytes. */
function toBuffer(chunk, encoding) {
  if (typeof chunk === "string") return Buffer.from(chunk, encoding);
  if (chunk instanceof Buffer) return chunk;
  if (ArrayBuffer.isView(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return Buffer.from(chunk);
  throw new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array');
}

function destroyStream(stream, err, callback) {
  if (stream.destroyed) {
    if (typeof callback === "function") later(callback, err);
    return stream;
  }
  stream.destroyed = true;
  const done = (error) => {
    if (error) {
      stream.errored = error;
      later(() => stream.emit("error", error));
    }
    later(() => {
      stream.closed = true;
      stream.emit("close");
    });
    if (typeof callback === "function") later(callback, error);
  };
  if (typeof stream._destroy === "function") stream._destroy(err ?? null, done);
  else done(err);
  return stream;
}

/**
 * Makes `Ctor` (a function, so CommonJS code can still write
 * `Readable.call(this)` in its own constructors) a subclass of `Parent`
 * with the methods and statics of the class `Methods`.
 */
function defineStream(Ctor, Parent, Methods) {
  ObjectSetPrototypeOf(Ctor.prototype, Parent.prototype);
  ObjectSetPrototypeOf(Ctor, Parent);
  const methods = ObjectGetOwnPropertyDescriptors(Methods.prototype);
  delete methods.constructor;
  ObjectDefineProperties(Ctor.prototype, methods);
  const statics = ObjectGetOwnPropertyDescriptors(Methods);
  delete statics.length;
  delete statics.name;
  delete statics.prototype;
  ObjectDefineProperties(Ctor, statics);
}

function Stream(options = undefined) {
  if (!(this instanceof Stream)) return new Stream(options);
  EventEmitter.call(this, options);
}

defineStream(
  Stream,
  EventEmitter,
  class {
    pipe(destination, options) {
      return Readable.prototype.pipe.call(this, destination, options);
    }
  },
);

function Readable(options = {}) {
  if (!(this instanceof Readable)) return new Readable(options);
  Stream.call(this, options);
  initReadable(this, options ?? {});
}

function initReadable(stream, options) {
  stream.readableObjectMode = !!(options.objectMode || options.readableObjectMode);
  stream.readableHighWaterMark = options.highWaterMark ?? options.readableHighWaterMark ??
    (stream.readableObjectMode ? DEFAULT_OBJECT_HIGH_WATER_MARK : DEFAULT_HIGH_WATER_MARK);
  stream.readableEncoding = null;
  stream.readableFlowing = null;
  stream.readableEnded = false;
  stream.destroyed = false;
  stream.closed = false;
  stream.errored = null;
  stream.autoDestroy = options.autoDestroy ?? true;
  // Named as Node names it: libraries read (and sometimes set) fields of it.
  stream._readableState = {
    buffer: [],
    length: 0,
    ended: false,
    reading: false,
    flowScheduled: false,
    decoder: null,
    objectMode: stream.readableObjectMode,
    highWaterMark: stream.readableHighWaterMark,
  };
  if (typeof options.read === "function") stream._read = options.read;
  if (typeof options.destroy === "function") stream._destroy = options.destroy;
  if (options.encoding) stream.setEncoding(options.encoding);
  if (options.signal) options.signal.addEventListener("abort", () => stream.destroy(options.signal.reason), { once: true });
}

class ReadableMethods {

  get readable() {
    return !this.destroyed && !this.readableEnded;
  }

  get readableLength() {
    return this._readableState.length;
  }

  _read() {
    throw codedError("ERR_METHOD_NOT_IMPLEMENTED", "The _read() method is not implemented");
  }

  setEncoding(encoding) {
    this._readableState.decoder = new StringDecoder(encoding);
    this.readableEncoding = this._readableState.decoder.encoding;
    return this;
  }

  push(chunk, encoding = undefined) {
    const state = this._readableState;
    state.reading = false;
    if (chunk === null) {
      state.ended = true;
      scheduleFlow(this);
      return false;
    }
    if (state.ended) {
      this.destroy(codedError("ERR_STREAM_PUSH_AFTER_EOF", "stream.push() after EOF"));
      return false;
    }
    if (!this.readableObjectMode) chunk = toBuffer(chunk, encoding);
    if (this.readableObjectMode || chunk.length > 0) {
      state.buffer.push(chunk);
      state.length += sizeOf(chunk, this.readableObjectMode);
    }
    scheduleFlow(this);
    return state.length < this.readableHighWaterMark;
  }

  unshift(chunk, encoding = undefined) {
    if (chunk === null) return;
    if (!this.readableObjectMode) chunk = toBuffer(chunk, encoding);
    this._readableState.buffer.unshift(chunk);
    this._readableState.length += sizeOf(chunk, this.readableObjectMode);
    scheduleFlow(this);
  }

  /** Takes what is buffered (up to `size` bytes), asking _read for more when low. */
  read(size = undefined) {
    const state = this._readableState;
    let chunk = null;
    if (state.buffer.length > 0) {
      if (this.readableObjectMode || size === undefined || size >= state.length) {
        if (this.readableObjectMode) {
          chunk = state.buffer.shift();
          state.length -= 1;
        } else {
          chunk = state.buffer.length === 1 ? state.buffer[0] : Buffer.concat(state.buffer);
          state.buffer = [];
          state.length = 0;
        }
      } else if (size > 0) {
        const all = Buffer.concat(state.buffer);
        chunk = all.subarray(0, size);
        state.buffer = [all.subarray(size)];
        state.length -= size;
      }
    }
    if (chunk !== null && state.decoder !== null && !this.readableObjectMode) chunk = state.decoder.write(chunk);
    if (!state.ended && !state.reading && !this.destroyed && state.length < this.readableHighWaterMark) {
      state.reading = true;
      try {
        this._read(this.readableHighWaterMark);
      } catch (err) {
        this.destroy(err);
      }
    }
    if (state.ended && state.length === 0) maybeEnd(this);
    return chunk;
  }




  on(event, listener) {
    EventEmitter.prototype.on.call(this, event, listener);
    if (event === "data" && this.readableFlowing !== false) this.resume();
    if (event === "readable") {
      this.readableFlowing = false;
      this.read(0);
      scheduleFlow(this);
    }
    return this;
  }

  resume() {
    if (this.readableFlowing !== true) {
      this.readableFlowing = true;
      this.emit("resume");
      if (this._readableState.length === 0) this.read(0);
      scheduleFlow(this);
    }
    return this;
  }

  pause() {
    if (this.readableFlowing !== false) {
      this.readableFlowing = false;
      this.emit("pause");
    }
    return this;
  }

  isPaused() {
    return this.readableFlowing === false;
  }

  pipe(destination, options = undefined) {
    const end = options?.end ?? true;
    const onData = (chunk) => {
      if (destination.write(chunk) === false) {
        this.pause();
        destination.once("drain", () => this.resume());
      }
    };
    this.on("data", onData);
    if (end) this.once("end", () => destination.end());
    this.once("error", (err) => destination.destroy?.(err));
    destination.emit("pipe", this);
    this.resume();
    return destination;
  }

  unpipe(destination = undefined) {
    this.removeAllListeners("data");
    destination?.emit("unpipe", this);
    return this;
  }

  destroy(err = undefined, callback = undefined) {
    return destroyStream(this, err, callback);
  }

  async *[SymbolAsyncIterator]() {
    const errored = () => this.errored;
    let wake = null;
    const signal = () => {
      if (wake !== null) {
        const resolve = wake;
        wake = null;
        resolve();
      }
    };
    this.on("readable", signal);
    this.on("end", signal);
    this.on("error", signal);
    this.on("close", signal);
    try {
      while (true) {
        const chunk = this.read();
        if (chunk !== null) {
          yield chunk;
          continue;
        }
        if (errored()) throw errored();
        if (this.readableEnded || this.destroyed) return;
        await new Promise((resolve) => (wake = resolve));
      }
    } finally {
      this.off("readable", signal);
      this.off("end", signal);
      this.off("error", signal);
      this.off("close", signal);
      if (!this.readableEnded && !this.destroyed) this.destroy();
    }
  }

  static from(iterable, options = {}) {
    if (typeof iterable === "string" || iterable instanceof Uint8Array) {
      return new Readable({
        objectMode: false,
        ...options,
        read() {
          this.push(iterable);
          this.push(null);
        },
      });
    }
    const iterator = iterable[SymbolAsyncIterator]?.() ?? iterable[SymbolIterator]?.();
    if (iterator === undefined) throw new TypeError('The "iterable" argument must be an iterable');
    let pulling = false;
    return new Readable({
      objectMode: true,
      ...options,
      async read() {
        if (pulling) return;
        pulling = true;
        try {
          while (true) {
            const { value, done } = await iterator.next();
            if (done) {
              this.push(null);
              break;
            }
            if (!this.push(await value)) break;
          }
        } catch (err) {
          this.destroy(err);
        } finally {
          pulling = false;
        }
      },
      destroy(err, callback) {
        Promise.resolve(iterator.return?.()).then(() => callback(err), callback);
      },
    });
  }

  /** A Web ReadableStream reading `readable`. */
  static toWeb(readable) {
    return new ReadableStream({
      start(controller) {
        readable.on("data", (chunk) => {
          controller.enqueue(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
          if (controller.desiredSize <= 0) readable.pause();
        });
        readable.once("end", () => controller.close());
        readable.once("error", (err) => controller.error(err));
      },
      pull() {
        readable.resume();
      },
      cancel(reason) {
        readable.destroy(reason);
      },
    });
  }

  /** A Readable reading a Web ReadableStream. */
  static fromWeb(stream, options = {}) {
    const reader = stream.getReader();
    return new Readable({
      ...options,
      async read() {
        try {
          const { value, done } = await reader.read();
          this.push(done ? null : value);
        } catch (err) {
          this.destroy(err);
        }
      },
      destroy(err, callback) {
        reader.cancel(err).then(() => callback(err), callback);
      },
    });
  }
}

defineStream(Readable, Stream, ReadableMethods);
Readable.prototype.addListener = Readable.prototype.on;

function scheduleFlow(stream) {
  const state = stream._readableState;
  if (state.flowScheduled) return;
  state.flowScheduled = true;
  later(() => {
    state.flowScheduled = false;
    flow(stream);
  });
}

function flow(stream) {
  const state = stream._readableState;
  if (stream.destroyed) return;
  if (stream.readableFlowing === true) {
    let chunk;
    while (stream.readableFlowing === true && (chunk = stream.read()) !== null) {
      if (typeof chunk === "string" && chunk === "") continue;
      stream.emit("data", chunk);
    }
  } else if (state.length > 0 || state.ended) {
    stream.emit("readable");
  }
  if (state.ended && state.length === 0) maybeEnd(stream);
}

function maybeEnd(stream) {
  const state = stream._readableState;
  if (stream.readableEnded || state.endScheduled) return;
  if (stream.readableFlowing === false && stream.listenerCount("readable") === 0 && state.length > 0) return;
  state.endScheduled = true;
  later(() => {
    if (stream.destroyed || stream.readableEnded) return;
    if (state.decoder !== null) {
      const rest = state.decoder.end();
      if (rest !== "" && stream.readableFlowing) stream.emit("data", rest);
    }
    stream.readableEnded = true;
    stream.emit("end");
    const writableDone = stream.writable === undefined || stream.writableFinished || stream.writableEnded === undefined;
    if (stream.autoDestroy && writableDone) stream.destroy();
  });
}


function Writable(options = {}) {
  if (!(this instanceof Writable)) return new Writable(options);
  Stream.call(this, options);
  initWritable(this, options ?? {});
}

class WritableStatics {
  static toWeb(writable) {
    return new WritableStream({
      write(chunk) {
        return new Promise((resolve, reject) => {
          writable.write(chunk, (err) => (err ? reject(err) : resolve()));
        });
      },
      close() {
        return new Promise((resolve) => writable.end(resolve));
      },
      abort(reason) {
        writable.destroy(reason);
      },
    });
  }

  static fromWeb(stream, options = {}) {
    const writer = stream.getWriter();
    return new Writable({
      ...options,
      write(chunk, _encoding, callback) {
        writer.write(chunk).then(() => callback(), callback);
      },
      final(callback) {
        writer.close().then(() => callback(), callback);
      },
    });
  }
}

function initWritable(stream, options) {
  stream.writableObjectMode = !!(options.objectMode || options.writableObjectMode);
  stream.writableHighWaterMark = options.highWaterMark ?? options.writableHighWaterMark ??
    (stream.writableObjectMode ? DEFAULT_OBJECT_HIGH_WATER_MARK : DEFAULT_HIGH_WATER_MARK);
  stream.writableEnded = false;
  stream.writableFinished = false;
  stream.writableNeedDrain = false;
  stream.destroyed = stream.destroyed ?? false;
  stream.closed = stream.closed ?? false;
  stream.errored = stream.errored ?? null;
  stream.autoDestroy = options.autoDestroy ?? true;
  stream._writableState = {
    objectMode: stream.writableObjectMode,
    highWaterMark: stream.writableHighWaterMark,
    queue: [],
    length: 0,
    writing: false,
    decodeStrings: options.decodeStrings ?? true,
    defaultEncoding: options.defaultEncoding ?? "utf8",
    corked: 0,
  };
  if (typeof options.write === "function") stream._write = options.write;
  if (typeof options.writev === "function") stream._writev = options.writev;
  if (typeof options.final === "function") stream._final = options.final;
  if (typeof options.destroy === "function") stream._destroy = options.destroy;
}

const writableMethods = {
  get writable() {
    return !this.destroyed && !this.writableEnded;
  },

  get writableLength() {
    return this._writableState.length;
  },

  _write(chunk, encoding, callback) {
    if (typeof this._writev === "function") this._writev([{ chunk, encoding }], callback);
    else throw codedError("ERR_METHOD_NOT_IMPLEMENTED", "The _write() method is not implemented");
  },

  write(chunk, encoding = undefined, callback = undefined) {
    if (typeof encoding === "function") {
      callback = encoding;
      encoding = undefined;
    }
    const state = this._writableState;
    encoding = encoding ?? state.defaultEncoding;
    if (chunk === null) throw codedError("ERR_STREAM_NULL_VALUES", "May not write null values to stream");
    if (this.writableEnded) {
      const err = codedError("ERR_STREAM_WRITE_AFTER_END", "write after end");
      if (typeof callback === "function") later(callback, err);
      later(() => this.emit("error", err));
      return false;
    }
    if (!this.writableObjectMode) {
      if (typeof chunk === "string" && state.decodeStrings) {
        chunk = Buffer.from(chunk, encoding);
        encoding = "buffer";
      } else if (typeof chunk !== "string") {
        chunk = toBuffer(chunk);
        encoding = "buffer";
      }
    }
    state.length += sizeOf(chunk, this.writableObjectMode);
    state.queue.push({ chunk, encoding, callback });
    const ok = state.length < this.writableHighWaterMark;
    if (!ok) this.writableNeedDrain = true;
    if (!state.writing && state.corked === 0) this._writeNext();
    return ok;
  },

  _writeNext() {
    const state = this._writableState;
    const next = state.queue.shift();
    if (next === undefined) {
      if (this.writableNeedDrain && state.length === 0) {
        this.writableNeedDrain = false;
        later(() => this.emit("drain"));
      }
      if (this.writableEnded) this._finishMaybe();
      return;
    }
    state.writing = true;
    let called = false;
    const onWrite = (err) => {
      if (called) return;
      called = true;
      state.writing = false;
      state.length -= sizeOf(next.chunk, this.writableObjectMode);
      if (typeof next.callback === "function") later(next.callback, err ?? null);
      if (err) {
        this.destroy(err);
        return;
      }
      later(() => this._writeNext());
    };
    try {
      this._write(next.chunk, next.encoding, onWrite);
    } catch (err) {
      onWrite(err);
    }
  },

  end(chunk = undefined, encoding = undefined, callback = undefined) {
    if (typeof chunk === "function") {
      callback = chunk;
      chunk = undefined;
    } else if (typeof encoding === "function") {
      callback = encoding;
      encoding = undefined;
    }
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding);
    if (typeof callback === "function") {
      if (this.writableFinished) later(callback);
      else this.once("finish", callback);
    }
    if (!this.writableEnded) {
      this.writableEnded = true;
      this._writableState.corked = 0;
      if (!this._writableState.writing) this._writeNext();
    }
    return this;
  },

  _finishMaybe() {
    const state = this._writableState;
    if (state.finishing || this.writableFinished || state.queue.length > 0 || state.writing) return;
    state.finishing = true;
    const finish = (err) => {
      if (err) {
        this.destroy(err);
        return;
      }
      later(() => {
        this.writableFinished = true;
        this.emit("finish");
        const readableDone = this.readable === undefined || this.readableEnded;
        if (this.autoDestroy && readableDone) this.destroy();
      });
    };
    if (typeof this._final === "function") {
      try {
        this._final(finish);
      } catch (err) {
        finish(err);
      }
    } else {
      finish();
    }
  },

  cork() {
    this._writableState.corked++;
  },

  uncork() {
    if (this._writableState.corked > 0 && --this._writableState.corked === 0 && !this._writableState.writing) this._writeNext();
  },

  setDefaultEncoding(encoding) {
    this._writableState.defaultEncoding = encoding;
    return this;
  },

  destroy(err = undefined, callback = undefined) {
    return destroyStream(this, err, callback);
  },
};
defineStream(Writable, Stream, WritableStatics);
// A Duplex is a Writable too, as Node answers `instanceof`.
ObjectDefineProperty(Writable, SymbolHasInstance, {
  value: function hasInstance(object) {
    if (FunctionPrototypeSymbolHasInstance(this, object)) return true;
    return this === Writable && typeof object?._writableState === "object" && object._writableState !== null;
  },
});
Object.defineProperties(Writable.prototype, Object.getOwnPropertyDescriptors(writableMethods));

function Duplex(options = {}) {
  if (!(this instanceof Duplex)) return new Duplex(options);
  options ??= {};
  Readable.call(this, options);
  initWritable(this, options);
  this.allowHalfOpen = options.allowHalfOpen ?? true;
  if (!this.allowHalfOpen) this.once("end", () => this.end());
}

class DuplexStatics {
  static from(body) {
    if (body instanceof Duplex) return body;
    if (typeof body === "object" && body !== null && ("readable" in body || "writable" in body)) {
      const { readable, writable } = body;
      const duplex = new Duplex({
        objectMode: true,
        read() {
          readable?.resume();
        },
        write(chunk, encoding, callback) {
          writable ? writable.write(chunk, encoding, callback) : callback();
        },
        final(callback) {
          writable ? writable.end(callback) : callback();
        },
      });
      readable?.on("data", (chunk) => duplex.push(chunk));
      readable?.once("end", () => duplex.push(null));
      return duplex;
    }
    return Readable.from(body);
  }
}
defineStream(Duplex, Readable, DuplexStatics);
for (const [name, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(writableMethods))) {
  if (name !== "destroy") Object.defineProperty(Duplex.prototype, name, descriptor);
}

function Transform(options = {}) {
  if (!(this instanceof Transform)) return new Transform(options);
  options ??= {};
  Duplex.call(this, options);
  if (typeof options.transform === "function") this._transform = options.transform;
  if (typeof options.flush === "function") this._flush = options.flush;
}

class TransformMethods {
  _transform() {
    throw codedError("ERR_METHOD_NOT_IMPLEMENTED", "The _transform() method is not implemented");
  }

  _write(chunk, encoding, callback) {
    this._transform(chunk, encoding, (err, data) => {
      if (err) {
        callback(err);
        return;
      }
      if (data !== undefined && data !== null) this.push(data);
      callback();
    });
  }

  _final(callback) {
    const done = (err, data) => {
      if (err) {
        callback(err);
        return;
      }
      if (data !== undefined && data !== null) this.push(data);
      this.push(null);
      callback();
    };
    if (typeof this._flush === "function") this._flush(done);
    else done();
  }

  _read() {}
}

defineStream(Transform, Duplex, TransformMethods);

function PassThrough(options = {}) {
  if (!(this instanceof PassThrough)) return new PassThrough(options);
  Transform.call(this, options);
}

defineStream(
  PassThrough,
  Transform,
  class {
    _transform(chunk, _encoding, callback) {
      callback(null, chunk);
    }
  },
);

/** Calls `callback` once `stream` has ended, finished or failed. */
function finished(stream, options, callback = undefined) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  let done = false;
  const finish = (err) => {
    if (done) return;
    done = true;
    cleanup();
    callback(err ?? undefined);
  };
  const readable = options?.readable ?? typeof stream.read === "function";
  const writable = options?.writable ?? typeof stream.write === "function";
  const onEnd = () => {
    if (!writable || stream.writableFinished) finish();
  };
  const onFinish = () => {
    if (!readable || stream.readableEnded) finish();
  };
  const onError = (err) => finish(err);
  const onClose = () => {
    if ((readable && !stream.readableEnded) || (writable && !stream.writableFinished)) {
      finish(stream.errored ?? codedError("ERR_STREAM_PREMATURE_CLOSE", "Premature close"));
    } else {
      finish();
    }
  };
  stream.on("end", onEnd);
  stream.on("finish", onFinish);
  stream.on("error", onError);
  stream.on("close", onClose);
  function cleanup() {
    stream.off("end", onEnd);
    stream.off("finish", onFinish);
    stream.off("error", onError);
    stream.off("close", onClose);
  }
  if ((!readable || stream.readableEnded) && (!writable || stream.writableFinished)) later(finish);
  return cleanup;
}

/**
 * Pipes `streams` into one another and calls the callback (the last
 * argument) once the last has finished, or with the first error, after
 * destroying every stream. A function in the chain is an async generator
 * transform taking the source.
 */
function pipeline(...args) {
  const callback = typeof args[args.length - 1] === "function" ? args.pop() : () => {};
  const streams = args.flat();
  let source = streams[0];
  if (typeof source?.pipe !== "function" && source !== undefined) {
    source = source instanceof ReadableStream ? Readable.fromWeb(source) : Readable.from(source);
  }
  const chain = [source];
  for (let i = 1; i < streams.length; i++) {
    let stage = streams[i];
    if (typeof stage === "function") stage = Readable.from(stage(chain[chain.length - 1]));
    else if (stage instanceof WritableStream) stage = Writable.fromWeb(stage);
    else chain[chain.length - 1].pipe(stage);
    chain.push(stage);
  }
  let done = false;
  const finish = (err) => {
    if (done) return;
    done = true;
    if (err) for (const stream of chain) if (!stream.destroyed) stream.destroy(err);
    callback(err);
  };
  for (const stream of chain.slice(0, -1)) stream.once("error", finish);
  const last = chain[chain.length - 1];
  // A writable last stage is done once written (its output, if a
  // Transform, is the caller's to read); a readable one once read.
  const writable = typeof last.write === "function";
  finished(last, { readable: !writable, writable }, (err) => finish(err));
  if (typeof last.write !== "function") last.resume?.();
  return last;
}

function addAbortSignal(signal, stream) {
  signal.addEventListener("abort", () => stream.destroy(signal.reason), { once: true });
  return stream;
}

function isReadable(stream) {
  return !!stream && typeof stream.read === "function" && !stream.destroyed && !stream.readableEnded;
}

function isErrored(stream) {
  return !!stream?.errored;
}

const promises = {
  finished: (stream, options) =>
    new Promise((resolve, reject) => finished(stream, options ?? {}, (err) => (err ? reject(err) : resolve()))),
  pipeline: (...streams) =>
    new Promise((resolve, reject) => pipeline(...streams, (err) => (err ? reject(err) : resolve()))),
};

Stream.Readable = Readable;
Stream.Writable = Writable;
Stream.Duplex = Duplex;
Stream.Transform = Transform;
Stream.PassThrough = PassThrough;
Stream.Stream = Stream;
Stream.pipeline = pipeline;
Stream.finished = finished;
Stream.promises = promises;
Stream.addAbortSignal = addAbortSignal;
Stream.isReadable = isReadable;
Stream.isErrored = isErrored;

export default Stream;
export {
  addAbortSignal,
  Duplex,
  finished,
  isErrored,
  isReadable,
  PassThrough,
  pipeline,
  promises,
  Readable,
  Stream,
  Transform,
  Writable,
};
