// node:string_decoder - decodes a byte stream chunk by chunk without
// splitting a character across chunks.
import { primordials } from "ext:core/mod.js";
import { decode, normalizeEncoding } from "ext:outpost_node/00_encodings.js";

const { Uint8Array } = primordials;

/** How many bytes a group needs, for encodings that group bytes. */
const GROUP = { base64: 3, base64url: 3, utf16le: 2 };

class StringDecoder {
  #decoder = null;
  #pending = new Uint8Array(0);

  constructor(encoding = "utf8") {
    this.encoding = normalizeEncoding(encoding);
    if (this.encoding === "utf8") this.#decoder = new TextDecoder("utf-8");
  }

  /** The text of `chunk`, holding back an incomplete character for later. */
  write(chunk) {
    if (typeof chunk === "string") return chunk;
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#decoder !== null) return this.#decoder.decode(bytes, { stream: true });
    const group = GROUP[this.encoding];
    if (group === undefined) return decode(bytes, this.encoding);
    const all = new Uint8Array(this.#pending.length + bytes.length);
    all.set(this.#pending);
    all.set(bytes, this.#pending.length);
    const whole = all.length - (all.length % group);
    this.#pending = all.slice(whole);
    return decode(all.subarray(0, whole), this.encoding);
  }

  /** What is left, with `chunk` first if given. */
  end(chunk = undefined) {
    const text = chunk === undefined ? "" : this.write(chunk);
    if (this.#decoder !== null) return text + this.#decoder.decode();
    const rest = this.#pending;
    this.#pending = new Uint8Array(0);
    return text + (rest.length > 0 ? decode(rest, this.encoding) : "");
  }
}

export { StringDecoder };
export default { StringDecoder };
