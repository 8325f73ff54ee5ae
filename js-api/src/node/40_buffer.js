// node:buffer - Buffer as a Uint8Array subclass, the way Node defines it:
// encodings (utf8, hex, base64, base64url, latin1/binary, ascii, utf16le),
// views that share memory (subarray/slice), comparisons, searches, and the
// fixed-width integer and float readers and writers.
import { primordials } from "ext:core/mod.js";
import { decode, encode, ENCODINGS } from "ext:outpost_node/00_encodings.js";

const {
  ArrayBufferIsView,
  ArrayIsArray,
  MathMin,
  NumberIsInteger,
  ObjectSetPrototypeOf,
  RangeError,
  StringPrototypeToLowerCase,
  TypeError,
  Uint8Array,
} = primordials;

const kMaxLength = 2 ** 32;
const INSPECT_MAX_BYTES = 50;

class Buffer extends Uint8Array {
  /** @deprecated as in Node: use Buffer.from or Buffer.alloc. */
  constructor(arg, encodingOrOffset, length) {
    if (typeof arg === "number") {
      super(arg);
    } else if (arg instanceof ArrayBuffer || arg instanceof SharedArrayBuffer) {
      super(arg, encodingOrOffset ?? 0, length ?? arg.byteLength - (encodingOrOffset ?? 0));
    } else {
      const bytes = typeof arg === "string" ? encode(arg, encodingOrOffset) : arg;
      super(bytes.length);
      this.set(bytes);
    }
  }

  static from(value, encodingOrOffset = undefined, length = undefined) {
    if (typeof value === "string") return fromBytes(encode(value, encodingOrOffset));
    if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
      const offset = encodingOrOffset === undefined ? 0 : +encodingOrOffset;
      if (offset > value.byteLength) throw new RangeError('"offset" is outside of buffer bounds');
      const size = length === undefined ? value.byteLength - offset : +length;
      if (offset + size > value.byteLength) throw new RangeError('"length" is outside of buffer bounds');
      return new Buffer(value, offset, size);
    }
    if (ArrayBufferIsView(value)) {
      const copy = allocUnsafe(value.byteLength);
      copy.set(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
      return copy;
    }
    if (ArrayIsArray(value) || (value !== null && typeof value === "object" && typeof value.length === "number")) {
      const out = allocUnsafe(value.length);
      for (let i = 0; i < value.length; i++) out[i] = value[i] & 255;
      return out;
    }
    if (value !== null && typeof value === "object" && value.type === "Buffer" && ArrayIsArray(value.data)) {
      return Buffer.from(value.data);
    }
    if (value !== null && typeof value === "object") {
      const primitive = value.valueOf?.() ?? value[Symbol.toPrimitive]?.("string");
      if (primitive !== undefined && primitive !== value) return Buffer.from(primitive, encodingOrOffset, length);
    }
    throw new TypeError(
      "The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object.",
    );
  }

  static alloc(size, fill = undefined, encoding = undefined) {
    checkSize(size);
    const buffer = new Buffer(size);
    if (fill !== undefined && fill !== 0) buffer.fill(fill, 0, size, encoding);
    return buffer;
  }

  static allocUnsafe(size) {
    checkSize(size);
    return new Buffer(size);
  }

  static allocUnsafeSlow(size) {
    return Buffer.allocUnsafe(size);
  }

  static isBuffer(value) {
    return value instanceof Buffer;
  }

  static isEncoding(encoding) {
    return typeof encoding === "string" && ENCODINGS.includes(StringPrototypeToLowerCase(encoding));
  }

  static byteLength(value, encoding = "utf8") {
    if (typeof value !== "string") {
      if (ArrayBufferIsView(value) || value instanceof ArrayBuffer) return value.byteLength;
      throw new TypeError('The "string" argument must be of type string or an instance of Buffer or ArrayBuffer.');
    }
    return encode(value, encoding).length;
  }

  static concat(list, totalLength = undefined) {
    if (!ArrayIsArray(list)) throw new TypeError('The "list" argument must be an instance of Array.');
    const total = totalLength ?? list.reduce((sum, item) => sum + item.length, 0);
    const out = Buffer.alloc(total);
    let offset = 0;
    for (const item of list) {
      if (!(item instanceof Uint8Array)) throw new TypeError('The "list" items must be Buffer or Uint8Array.');
      if (offset >= total) break;
      const take = MathMin(item.length, total - offset);
      out.set(item.subarray(0, take), offset);
      offset += take;
    }
    return out;
  }

  static compare(a, b) {
    return compareBytes(a, b);
  }

  get parent() {
    return this.buffer;
  }

  get offset() {
    return this.byteOffset;
  }

  toString(encoding = "utf8", start = 0, end = this.length) {
    start = MathMin(this.length, start < 0 ? 0 : start);
    end = MathMin(this.length, end);
    if (end <= start) return "";
    return decode(this.subarray(start, end), encoding);
  }

  toJSON() {
    return { type: "Buffer", data: Array.from(this) };
  }

  equals(other) {
    if (!(other instanceof Uint8Array)) throw new TypeError('The "otherBuffer" argument must be a Buffer or Uint8Array.');
    return compareBytes(this, other) === 0;
  }

  compare(target, targetStart = 0, targetEnd = target.length, sourceStart = 0, sourceEnd = this.length) {
    return compareBytes(this.subarray(sourceStart, sourceEnd), target.subarray(targetStart, targetEnd));
  }

  subarray(start = 0, end = this.length) {
    const view = Uint8Array.prototype.subarray.call(this, start, end);
    ObjectSetPrototypeOf(view, Buffer.prototype);
    return view;
  }

  /** A view, not a copy, as in Node. */
  slice(start = 0, end = this.length) {
    return this.subarray(start, end);
  }

  write(text, offset = 0, length = undefined, encoding = "utf8") {
    if (typeof offset === "string") {
      encoding = offset;
      offset = 0;
    } else if (typeof length === "string") {
      encoding = length;
      length = undefined;
    }
    const bytes = encode(text, encoding);
    const room = this.length - offset;
    const count = MathMin(bytes.length, length ?? room, room);
    this.set(bytes.subarray(0, count), offset);
    return count;
  }

  fill(value, offset = 0, end = this.length, encoding = "utf8") {
    if (typeof offset === "string") {
      encoding = offset;
      offset = 0;
      end = this.length;
    }
    if (typeof value === "number") return Uint8Array.prototype.fill.call(this, value & 255, offset, end);
    const pattern = typeof value === "string" ? encode(value, encoding) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    if (pattern.length === 0) return Uint8Array.prototype.fill.call(this, 0, offset, end);
    for (let i = offset, j = 0; i < end; i++, j = (j + 1) % pattern.length) this[i] = pattern[j];
    return this;
  }

  indexOf(value, byteOffset = 0, encoding = "utf8") {
    return search(this, value, byteOffset, encoding, false);
  }

  lastIndexOf(value, byteOffset = this.length, encoding = "utf8") {
    return search(this, value, byteOffset, encoding, true);
  }

  includes(value, byteOffset = 0, encoding = "utf8") {
    return this.indexOf(value, byteOffset, encoding) !== -1;
  }

  copy(target, targetStart = 0, sourceStart = 0, sourceEnd = this.length) {
    const count = MathMin(sourceEnd - sourceStart, target.length - targetStart);
    if (count <= 0) return 0;
    target.set(this.subarray(sourceStart, sourceStart + count), targetStart);
    return count;
  }

  swap16() {
    return swap(this, 2);
  }

  swap32() {
    return swap(this, 4);
  }

  swap64() {
    return swap(this, 8);
  }
}

function allocUnsafe(size) {
  return new Buffer(size);
}

function fromBytes(bytes) {
  ObjectSetPrototypeOf(bytes, Buffer.prototype);
  return bytes;
}

function checkSize(size) {
  if (typeof size !== "number" || size < 0 || size > kMaxLength || !NumberIsInteger(size)) {
    throw new RangeError(`The argument 'size' is invalid. Received ${size}`);
  }
}

function compareBytes(a, b) {
  const length = MathMin(a.length, b.length);
  for (let i = 0; i < length; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function search(buffer, value, from, encoding, backwards) {
  if (typeof from === "string") {
    encoding = from;
    from = backwards ? buffer.length : 0;
  }
  if (from < 0) from = buffer.length + from;
  const needle = typeof value === "number"
    ? new Uint8Array([value & 255])
    : typeof value === "string"
    ? encode(value, encoding)
    : value;
  if (needle.length === 0) return MathMin(from, buffer.length);
  const last = buffer.length - needle.length;
  const matches = (at) => {
    for (let j = 0; j < needle.length; j++) if (buffer[at + j] !== needle[j]) return false;
    return true;
  };
  if (backwards) {
    for (let i = MathMin(from, last); i >= 0; i--) if (matches(i)) return i;
  } else {
    for (let i = from; i <= last; i++) if (matches(i)) return i;
  }
  return -1;
}

function swap(buffer, size) {
  if (buffer.length % size !== 0) throw new RangeError(`Buffer size must be a multiple of ${size * 8}-bits`);
  for (let i = 0; i < buffer.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = buffer[a];
      buffer[a] = buffer[b];
      buffer[b] = t;
    }
  }
  return buffer;
}

function view(buffer) {
  return new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function checkOffset(buffer, offset, size) {
  if (offset === undefined) offset = 0;
  if (!NumberIsInteger(offset) || offset < 0 || offset + size > buffer.length) {
    throw new RangeError(`The value of "offset" is out of range. It must be >= 0 and <= ${buffer.length - size}. Received ${offset}`);
  }
  return offset;
}

// The fixed-width readers and writers: name, size, DataView method, little-endian.
const ACCESSORS = [
  ["UInt8", 1, "Uint8", false],
  ["Int8", 1, "Int8", false],
  ["UInt16LE", 2, "Uint16", true],
  ["UInt16BE", 2, "Uint16", false],
  ["Int16LE", 2, "Int16", true],
  ["Int16BE", 2, "Int16", false],
  ["UInt32LE", 4, "Uint32", true],
  ["UInt32BE", 4, "Uint32", false],
  ["Int32LE", 4, "Int32", true],
  ["Int32BE", 4, "Int32", false],
  ["FloatLE", 4, "Float32", true],
  ["FloatBE", 4, "Float32", false],
  ["DoubleLE", 8, "Float64", true],
  ["DoubleBE", 8, "Float64", false],
  ["BigUInt64LE", 8, "BigUint64", true],
  ["BigUInt64BE", 8, "BigUint64", false],
  ["BigInt64LE", 8, "BigInt64", true],
  ["BigInt64BE", 8, "BigInt64", false],
];
for (const [name, size, method, little] of ACCESSORS) {
  const read = function (offset) {
    offset = checkOffset(this, offset, size);
    return view(this)[`get${method}`](offset, little);
  };
  const write = function (value, offset) {
    offset = checkOffset(this, offset, size);
    view(this)[`set${method}`](offset, value, little);
    return offset + size;
  };
  Buffer.prototype[`read${name}`] = read;
  Buffer.prototype[`write${name}`] = write;
  // Node's lowercase aliases (readUint8, readUint16LE...).
  if (name.startsWith("UInt") || name.startsWith("BigUInt")) {
    const alias = name.replace("UInt", "Uint");
    Buffer.prototype[`read${alias}`] = read;
    Buffer.prototype[`write${alias}`] = write;
  }
}

const constants = { MAX_LENGTH: kMaxLength, MAX_STRING_LENGTH: 2 ** 29 - 24 };
// The Web's Blob and File, which Node re-exports from node:buffer.
const { Blob, File } = globalThis;
const SlowBuffer = Buffer;

function atob(text) {
  return globalThis.atob(text);
}

function btoa(text) {
  return globalThis.btoa(text);
}

function isUtf8(input) {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(input);
    return true;
  } catch {
    return false;
  }
}

function isAscii(input) {
  const bytes = ArrayBufferIsView(input) ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : new Uint8Array(input);
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 127) return false;
  return true;
}

export default {
  atob,
  Blob,
  btoa,
  Buffer,
  constants,
  File,
  INSPECT_MAX_BYTES,
  isAscii,
  isUtf8,
  kMaxLength,
  SlowBuffer,
};
export {
  atob,
  Blob,
  btoa,
  Buffer,
  constants,
  File,
  INSPECT_MAX_BYTES,
  isAscii,
  isUtf8,
  kMaxLength,
  SlowBuffer,
};
