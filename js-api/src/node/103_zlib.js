// node:zlib - deflate, inflate, gzip, gunzip, unzip, raw deflate and
// brotli as streams (createGzip...), one-shot calls (gzipSync, gzip with a
// callback) and crc32, on the same compression ops as CompressionStream.
// Compression runs at the default level (6 for deflate and gzip): the level,
// window, memory and strategy options are accepted and not applied, so
// output is valid but may differ in size from Node's for other levels.
import { primordials } from "ext:core/mod.js";
import { op_compression_finish, op_compression_new, op_compression_write } from "ext:core/ops";
import { Buffer } from "node:buffer";
import { Transform } from "node:stream";

const { ArrayBufferIsView, Error, TypeError, Uint8Array } = primordials;

const constants = {
  Z_NO_FLUSH: 0,
  Z_PARTIAL_FLUSH: 1,
  Z_SYNC_FLUSH: 2,
  Z_FULL_FLUSH: 3,
  Z_FINISH: 4,
  Z_BLOCK: 5,
  Z_OK: 0,
  Z_STREAM_END: 1,
  Z_NEED_DICT: 2,
  Z_ERRNO: -1,
  Z_STREAM_ERROR: -2,
  Z_DATA_ERROR: -3,
  Z_MEM_ERROR: -4,
  Z_BUF_ERROR: -5,
  Z_VERSION_ERROR: -6,
  Z_NO_COMPRESSION: 0,
  Z_BEST_SPEED: 1,
  Z_BEST_COMPRESSION: 9,
  Z_DEFAULT_COMPRESSION: -1,
  Z_FILTERED: 1,
  Z_HUFFMAN_ONLY: 2,
  Z_RLE: 3,
  Z_FIXED: 4,
  Z_DEFAULT_STRATEGY: 0,
  DEFLATE: 1,
  INFLATE: 2,
  GZIP: 3,
  GUNZIP: 4,
  DEFLATERAW: 5,
  INFLATERAW: 6,
  UNZIP: 7,
  BROTLI_DECODE: 8,
  BROTLI_ENCODE: 9,
  Z_MIN_WINDOWBITS: 8,
  Z_MAX_WINDOWBITS: 15,
  Z_DEFAULT_WINDOWBITS: 15,
  Z_MIN_CHUNK: 64,
  Z_MAX_CHUNK: Infinity,
  Z_DEFAULT_CHUNK: 16384,
  Z_MIN_MEMLEVEL: 1,
  Z_MAX_MEMLEVEL: 9,
  Z_DEFAULT_MEMLEVEL: 8,
  Z_MIN_LEVEL: -1,
  Z_MAX_LEVEL: 9,
  Z_DEFAULT_LEVEL: -1,
  BROTLI_OPERATION_PROCESS: 0,
  BROTLI_OPERATION_FLUSH: 1,
  BROTLI_OPERATION_FINISH: 2,
  BROTLI_PARAM_MODE: 0,
  BROTLI_MODE_GENERIC: 0,
  BROTLI_MODE_TEXT: 1,
  BROTLI_MODE_FONT: 2,
  BROTLI_PARAM_QUALITY: 1,
  BROTLI_MIN_QUALITY: 0,
  BROTLI_MAX_QUALITY: 11,
  BROTLI_DEFAULT_QUALITY: 11,
  BROTLI_PARAM_SIZE_HINT: 5,
};

/** The compression ops' format and direction of each kind of stream. */
const FORMATS = {
  Deflate: ["deflate", false],
  Inflate: ["deflate", true],
  DeflateRaw: ["deflate-raw", false],
  InflateRaw: ["deflate-raw", true],
  Gzip: ["gzip", false],
  Gunzip: ["gzip", true],
  Unzip: [null, true],
  BrotliCompress: ["brotli", false],
  BrotliDecompress: ["brotli", true],
};

function dataError(cause) {
  const err = new Error(cause?.message ?? "invalid compressed data");
  err.code = "Z_DATA_ERROR";
  err.errno = constants.Z_DATA_ERROR;
  return err;
}

function bytesOf(data) {
  if (typeof data === "string") return Buffer.from(data);
  if (ArrayBufferIsView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError('The "buffer" argument must be of type string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer.');
}

/** One compression or decompression, fed chunk by chunk. */
class Codec {
  #format;
  #decoder;
  #handle = null;
  #done = false;

  constructor(format, decoder) {
    this.#format = format;
    this.#decoder = decoder;
  }

  #open(first) {
    // unzip takes gzip or zlib data, whichever the first bytes say.
    const format = this.#format ?? (first[0] === 0x1f && first[1] === 0x8b ? "gzip" : "deflate");
    this.#handle = op_compression_new(format, this.#decoder);
  }

  write(bytes) {
    if (this.#handle === null) this.#open(bytes);
    try {
      return op_compression_write(this.#handle, bytes);
    } catch (err) {
      this.#done = true;
      throw this.#decoder ? dataError(err) : err;
    }
  }

  finish() {
    if (this.#handle === null) this.#open(new Uint8Array(0));
    this.#done = true;
    try {
      return op_compression_finish(this.#handle, true);
    } catch (err) {
      throw this.#decoder ? dataError(err) : err;
    }
  }

  abandon() {
    if (this.#handle !== null && !this.#done) {
      this.#done = true;
      op_compression_finish(this.#handle, false);
    }
  }
}

/** The base of every zlib stream: a Transform through one Codec. */
class ZlibBase extends Transform {
  #codec;

  constructor(kind, options = {}) {
    super(options);
    const [format, decoder] = FORMATS[kind];
    this.#codec = new Codec(format, decoder);
    this.bytesWritten = 0;
    this._handle = {};
  }

  _transform(chunk, _encoding, callback) {
    let out;
    try {
      const bytes = bytesOf(chunk);
      this.bytesWritten += bytes.length;
      out = this.#codec.write(bytes);
    } catch (err) {
      callback(err);
      return;
    }
    callback(null, out.length > 0 ? Buffer.from(out.buffer, out.byteOffset, out.length) : undefined);
  }

  _flush(callback) {
    let out;
    try {
      out = this.#codec.finish();
    } catch (err) {
      callback(err);
      return;
    }
    callback(null, out.length > 0 ? Buffer.from(out.buffer, out.byteOffset, out.length) : undefined);
  }

  _destroy(err, callback) {
    this.#codec.abandon();
    this._handle = null;
    callback(err);
  }

  /** Output so far is already flushed after every write. */
  flush(_kind, callback) {
    if (typeof _kind === "function") callback = _kind;
    if (typeof callback === "function") queueMicrotask(callback);
  }

  params(_level, _strategy, callback) {
    if (typeof callback === "function") queueMicrotask(callback);
  }

  close(callback) {
    if (typeof callback === "function") this.once("close", callback);
    this.destroy();
  }
}

const classes = {};
const factories = {};
const oneShots = {};
for (const kind of Object.keys(FORMATS)) {
  const Kind = { [kind]: class extends ZlibBase {
    constructor(options) {
      super(kind, options);
    }
  } }[kind];
  classes[kind] = Kind;
  factories[`create${kind}`] = (options) => new Kind(options);
  const name = kind[0].toLowerCase() + kind.slice(1);
  const sync = (data, _options) => {
    const codec = new Codec(...FORMATS[kind]);
    const head = codec.write(bytesOf(data));
    const tail = codec.finish();
    return Buffer.concat([head, tail]);
  };
  oneShots[`${name}Sync`] = sync;
  oneShots[name] = (data, options, callback) => {
    if (typeof options === "function") callback = options;
    let result;
    let error = null;
    try {
      result = sync(data, options);
    } catch (err) {
      error = err;
    }
    queueMicrotask(() => callback(error, result));
  };
}

let crcTable = null;

/** The CRC-32 (as zip and gzip use) of `data`, continuing from `value`. */
function crc32(data, value = 0) {
  if (crcTable === null) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  const bytes = bytesOf(data);
  let crc = ~value;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

const {
  BrotliCompress,
  BrotliDecompress,
  Deflate,
  DeflateRaw,
  Gunzip,
  Gzip,
  Inflate,
  InflateRaw,
  Unzip,
} = classes;
const {
  createBrotliCompress,
  createBrotliDecompress,
  createDeflate,
  createDeflateRaw,
  createGunzip,
  createGzip,
  createInflate,
  createInflateRaw,
  createUnzip,
} = factories;
const {
  brotliCompress,
  brotliCompressSync,
  brotliDecompress,
  brotliDecompressSync,
  deflate,
  deflateRaw,
  deflateRawSync,
  deflateSync,
  gunzip,
  gunzipSync,
  gzip,
  gzipSync,
  inflate,
  inflateRaw,
  inflateRawSync,
  inflateSync,
  unzip,
  unzipSync,
} = oneShots;

export default { ...classes, ...factories, ...oneShots, constants, crc32 };
export {
  brotliCompress,
  BrotliCompress,
  brotliCompressSync,
  brotliDecompress,
  BrotliDecompress,
  brotliDecompressSync,
  constants,
  crc32,
  createBrotliCompress,
  createBrotliDecompress,
  createDeflate,
  createDeflateRaw,
  createGunzip,
  createGzip,
  createInflate,
  createInflateRaw,
  createUnzip,
  deflate,
  Deflate,
  deflateRaw,
  DeflateRaw,
  deflateRawSync,
  deflateSync,
  gunzip,
  Gunzip,
  gunzipSync,
  gzip,
  Gzip,
  gzipSync,
  inflate,
  Inflate,
  inflateRaw,
  InflateRaw,
  inflateRawSync,
  inflateSync,
  unzip,
  Unzip,
  unzipSync,
};
