// The byte encodings Node's APIs take (utf8, hex, base64, base64url,
// latin1/binary, ascii, utf16le), shared by node:buffer and
// node:string_decoder.
import { primordials } from "ext:core/mod.js";

const {
  MathFloor,
  MathMin,
  String,
  StringFromCharCode,
  StringPrototypeCharCodeAt,
  StringPrototypeToLowerCase,
  TypeError,
  Uint8Array,
} = primordials;

// Made on first use: a TextDecoder holds host state a snapshot cannot.
let encoder = null;
let utf8Decoder = null;
const ENCODINGS = ["utf8", "utf-8", "hex", "base64", "base64url", "latin1", "binary", "ascii", "ucs2", "ucs-2", "utf16le", "utf-16le"];

function normalizeEncoding(encoding) {
  if (encoding === undefined || encoding === null || encoding === "utf8" || encoding === "utf-8") return "utf8";
  const lower = StringPrototypeToLowerCase(String(encoding));
  switch (lower) {
    case "utf8":
    case "utf-8":
      return "utf8";
    case "hex":
    case "base64":
    case "base64url":
    case "latin1":
    case "ascii":
      return lower;
    case "binary":
      return "latin1";
    case "ucs2":
    case "ucs-2":
    case "utf16le":
    case "utf-16le":
      return "utf16le";
    default:
      throw new TypeError(`Unknown encoding: ${encoding}`);
  }
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_LOOKUP = new Uint8Array(256).fill(255);
for (let i = 0; i < 64; i++) B64_LOOKUP[StringPrototypeCharCodeAt(B64, i)] = i;
B64_LOOKUP[45] = 62; // '-' of base64url
B64_LOOKUP[95] = 63; // '_' of base64url

function base64Encode(bytes, url) {
  const alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" : B64;
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + alphabet[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + (url ? "" : "==");
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + (url ? "" : "=");
  }
  return out;
}

/** Lenient, as Node's: skips characters outside both alphabets, stops at '='. */
function base64Decode(text) {
  const out = new Uint8Array(MathFloor((text.length * 3) / 4) + 3);
  let length = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const code = StringPrototypeCharCodeAt(text, i);
    if (code === 61) break;
    const value = code < 256 ? B64_LOOKUP[code] : 255;
    if (value === 255) continue;
    acc = (acc << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[length++] = (acc >> bits) & 255;
    }
  }
  return out.subarray(0, length);
}

function hexDecode(text) {
  const out = new Uint8Array(text.length >> 1);
  let i = 0;
  for (; i < out.length; i++) {
    const byte = parseInt(text.substr(i * 2, 2), 16);
    if (NumberIsNaN(byte)) break;
    out[i] = byte;
  }
  return out.subarray(0, i);
}

function NumberIsNaN(n) {
  return n !== n;
}

/** `text` in `encoding` as bytes (a plain Uint8Array). */
function encode(text, encoding) {
  switch (normalizeEncoding(encoding)) {
    case "utf8":
      encoder ??= new TextEncoder();
      return encoder.encode(text);
    case "hex":
      return hexDecode(text);
    case "base64":
    case "base64url":
      return base64Decode(text);
    case "latin1":
    case "ascii": {
      const out = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i++) out[i] = StringPrototypeCharCodeAt(text, i) & 255;
      return out;
    }
    case "utf16le": {
      const out = new Uint8Array(text.length * 2);
      for (let i = 0; i < text.length; i++) {
        const code = StringPrototypeCharCodeAt(text, i);
        out[i * 2] = code & 255;
        out[i * 2 + 1] = code >> 8;
      }
      return out;
    }
  }
}

/** `bytes` as text in `encoding`. */
function decode(bytes, encoding) {
  switch (normalizeEncoding(encoding)) {
    case "utf8":
      utf8Decoder ??= new TextDecoder("utf-8");
      return utf8Decoder.decode(bytes);
    case "hex": {
      let out = "";
      for (let i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
      return out;
    }
    case "base64":
      return base64Encode(bytes, false);
    case "base64url":
      return base64Encode(bytes, true);
    case "latin1":
    case "ascii": {
      const mask = normalizeEncoding(encoding) === "ascii" ? 127 : 255;
      let out = "";
      for (let i = 0; i < bytes.length; i += 4096) {
        const chunk = bytes.subarray(i, MathMin(i + 4096, bytes.length));
        const codes = new Array(chunk.length);
        for (let j = 0; j < chunk.length; j++) codes[j] = chunk[j] & mask;
        out += StringFromCharCode(...codes);
      }
      return out;
    }
    case "utf16le": {
      let out = "";
      for (let i = 0; i + 1 < bytes.length; i += 2) out += StringFromCharCode(bytes[i] | (bytes[i + 1] << 8));
      return out;
    }
  }
}

export { decode, encode, ENCODINGS, normalizeEncoding };
