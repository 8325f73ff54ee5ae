// node:stream/consumers - a whole stream (Node or Web, or any async
// iterable of chunks) read into one value.
import { Buffer } from "node:buffer";

async function chunksOf(stream) {
  const chunks = [];
  const iterable = typeof stream[Symbol.asyncIterator] === "function" ? stream : stream.values?.();
  for await (const chunk of iterable) {
    chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  }
  return chunks;
}

async function buffer(stream) {
  return Buffer.concat((await chunksOf(stream)).map((c) => (c instanceof Uint8Array ? c : Buffer.from(c))));
}

async function arrayBuffer(stream) {
  const bytes = await buffer(stream);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

async function text(stream) {
  return (await buffer(stream)).toString("utf8");
}

async function json(stream) {
  return JSON.parse(await text(stream));
}

async function blob(stream) {
  return new Blob([await buffer(stream)]);
}

export default { arrayBuffer, blob, buffer, json, text };
export { arrayBuffer, blob, buffer, json, text };
