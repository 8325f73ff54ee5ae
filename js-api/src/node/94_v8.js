// node:v8 - the structured serializer: serialize/deserialize and the
// Serializer/Deserializer classes (with the Default* pair that carries
// Buffers and typed arrays as Node writes them). Values go through V8's own
// ValueSerializer one at a time (op_node_v8_*); the header, integers,
// doubles and raw bytes are encoded here. Heap statistics and flags are not
// offered: an isolate's heap is the platform's to watch.
import { primordials } from "ext:core/mod.js";
import { op_node_v8_read_value, op_node_v8_write_value } from "ext:core/ops";
import { Buffer } from "node:buffer";

const {
  ArrayBufferIsView,
  BigInt,
  DataView,
  Error,
  Number,
  ObjectPrototypeToString,
  TypeError,
  Uint8Array,
} = primordials;

const WIRE_FORMAT_VERSION = 15;

/** Node's numbering of array buffer views in host objects; a Buffer is 10. */
const VIEW_TYPES = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  DataView,
  Buffer,
  BigInt64Array,
  BigUint64Array,
];
const VIEW_TYPE_BY_TAG = new Map();
for (let i = 0; i < VIEW_TYPES.length; i++) {
  if (VIEW_TYPES[i] !== Buffer) {
    VIEW_TYPE_BY_TAG.set(ObjectPrototypeToString(new VIEW_TYPES[i](new ArrayBuffer(8))), i);
  }
}

function bytesOf(view) {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function concat(chunks, length) {
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** A base-128 varint of a non-negative BigInt, as V8 writes integers. */
function varint(value) {
  const bytes = [];
  do {
    let byte = Number(value & 0x7fn);
    value >>= 7n;
    if (value > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0n);
  return new Uint8Array(bytes);
}

function checkTransferable(arrayBuffer) {
  if (!(arrayBuffer instanceof ArrayBuffer) && !(arrayBuffer instanceof SharedArrayBuffer)) {
    throw new TypeError('The "arrayBuffer" argument must be an instance of ArrayBuffer or SharedArrayBuffer.');
  }
}

class Serializer {
  #chunks = [];
  #length = 0;
  #transfers = [];
  #viewsAsHost = false;
  /** While `_writeHostObject` runs, what it writes goes here. */
  #hostWrites = null;

  #push(bytes) {
    if (this.#hostWrites) {
      this.#hostWrites.push(bytes);
    } else {
      this.#chunks.push(bytes);
      this.#length += bytes.length;
    }
  }

  #hostObject(object) {
    const outer = this.#hostWrites;
    this.#hostWrites = [];
    try {
      this._writeHostObject(object);
      const written = this.#hostWrites;
      return concat(written, written.reduce((sum, chunk) => sum + chunk.length, 0));
    } finally {
      this.#hostWrites = outer;
    }
  }

  writeHeader() {
    this.#push(new Uint8Array([0xff]));
    this.#push(varint(BigInt(WIRE_FORMAT_VERSION)));
  }

  writeValue(value) {
    const bytes = op_node_v8_write_value(
      value,
      this.#transfers,
      this.#viewsAsHost,
      (object) => this.#hostObject(object),
    );
    this.#push(bytes);
    return true;
  }

  releaseBuffer() {
    const out = concat(this.#chunks, this.#length);
    this.#chunks = [];
    this.#length = 0;
    return Buffer.from(out.buffer, 0, out.length);
  }

  transferArrayBuffer(id, arrayBuffer) {
    checkTransferable(arrayBuffer);
    this.#transfers.push(id >>> 0, arrayBuffer);
  }

  writeUint32(value) {
    this.#push(varint(BigInt(value >>> 0)));
  }

  writeUint64(hi, lo) {
    this.#push(varint((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)));
  }

  writeDouble(value) {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, Number(value), true);
    this.#push(bytes);
  }

  writeRawBytes(source) {
    if (!ArrayBufferIsView(source)) {
      throw new TypeError('The "source" argument must be an instance of Buffer, TypedArray, or DataView.');
    }
    this.#push(bytesOf(source).slice());
  }

  _writeHostObject(object) {
    throw new this._getDataCloneError(`Unserializable host object: ${ObjectPrototypeToString(object)}`);
  }

  _setTreatArrayBufferViewsAsHostObjects(flag) {
    this.#viewsAsHost = !!flag;
  }
}
Serializer.prototype._getDataCloneError = Error;

class Deserializer {
  #data;
  #offset = 0;
  #version = 0;
  #transfers = [];

  constructor(buffer) {
    if (!ArrayBufferIsView(buffer)) {
      throw new TypeError('The "buffer" argument must be an instance of Buffer, TypedArray, or DataView.');
    }
    this.buffer = buffer;
    this.#data = bytesOf(buffer);
  }

  #varint(what) {
    let value = 0n;
    let shift = 0n;
    for (;;) {
      if (this.#offset >= this.#data.length || shift > 63n) throw new Error(`${what}() failed`);
      const byte = this.#data[this.#offset++];
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return value;
      shift += 7n;
    }
  }

  #hostObject(position) {
    this.#offset = position;
    const object = this._readHostObject();
    return [object, this.#offset];
  }

  readHeader() {
    if (this.#data[this.#offset] !== 0xff) {
      throw new Error("Unable to deserialize cloned data due to invalid or unsupported version.");
    }
    this.#offset++;
    const version = Number(this.#varint("ReadHeader"));
    if (version < 1 || version > WIRE_FORMAT_VERSION) {
      throw new Error("Unable to deserialize cloned data due to invalid or unsupported version.");
    }
    this.#version = version;
    return true;
  }

  readValue() {
    const [value, end] = op_node_v8_read_value(
      this.#data,
      this.#offset,
      this.#version || WIRE_FORMAT_VERSION,
      this.#transfers,
      (position) => this.#hostObject(position),
    );
    this.#offset = end;
    return value;
  }

  getWireFormatVersion() {
    return this.#version;
  }

  transferArrayBuffer(id, arrayBuffer) {
    checkTransferable(arrayBuffer);
    this.#transfers.push(id >>> 0, arrayBuffer);
  }

  readUint32() {
    return Number(BigInt.asUintN(32, this.#varint("ReadUint32")));
  }

  readUint64() {
    const value = BigInt.asUintN(64, this.#varint("ReadUint64"));
    return [Number(value >> 32n), Number(value & 0xffffffffn)];
  }

  readDouble() {
    if (this.#offset + 8 > this.#data.length) throw new Error("ReadDouble() failed");
    const value = new DataView(this.#data.buffer, this.#data.byteOffset + this.#offset, 8).getFloat64(0, true);
    this.#offset += 8;
    return value;
  }

  /** Skips `length` bytes and returns where they start in `this.buffer`. */
  _readRawBytes(length) {
    if (length < 0 || this.#offset + length > this.#data.length) throw new Error("ReadRawBytes() failed");
    const offset = this.#offset;
    this.#offset += length;
    return offset;
  }

  readRawBytes(length) {
    const offset = this._readRawBytes(length);
    return Buffer.from(this.#data.buffer, this.#data.byteOffset + offset, length);
  }

  _readHostObject() {
    throw new Error("Unable to deserialize a host object");
  }
}

/** Writes Buffers and typed arrays by copy, as Node's own serializer does. */
class DefaultSerializer extends Serializer {
  constructor() {
    super();
    this._setTreatArrayBufferViewsAsHostObjects(true);
  }

  _writeHostObject(view) {
    const type = view instanceof Buffer ? 10 : VIEW_TYPE_BY_TAG.get(ObjectPrototypeToString(view));
    if (type === undefined || !ArrayBufferIsView(view)) {
      throw new this._getDataCloneError(`Unserializable host object: ${ObjectPrototypeToString(view)}`);
    }
    this.writeUint32(type);
    this.writeUint32(view.byteLength);
    this.writeRawBytes(view);
  }
}

class DefaultDeserializer extends Deserializer {
  _readHostObject() {
    const type = this.readUint32();
    const length = this.readUint32();
    const offset = this._readRawBytes(length);
    const View = VIEW_TYPES[type];
    if (View === undefined) throw new Error("Unable to deserialize cloned data.");
    // A copy: the stream's bytes need not be aligned for the view.
    const source = new Uint8Array(this.buffer.buffer, this.buffer.byteOffset + offset, length);
    const copy = new Uint8Array(length);
    copy.set(source);
    if (View === Buffer) return Buffer.from(copy.buffer, 0, length);
    if (View === DataView) return new DataView(copy.buffer);
    if (length % View.BYTES_PER_ELEMENT !== 0) throw new Error("Unable to deserialize cloned data.");
    return new View(copy.buffer, 0, length / View.BYTES_PER_ELEMENT);
  }
}

function serialize(value) {
  const serializer = new DefaultSerializer();
  serializer.writeHeader();
  serializer.writeValue(value);
  return serializer.releaseBuffer();
}

function deserialize(buffer) {
  const deserializer = new DefaultDeserializer(buffer);
  deserializer.readHeader();
  return deserializer.readValue();
}

export default { DefaultDeserializer, DefaultSerializer, Deserializer, deserialize, serialize, Serializer };
export { DefaultDeserializer, DefaultSerializer, Deserializer, deserialize, serialize, Serializer };
