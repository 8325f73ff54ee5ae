import { area, bytes, readAll, sameBytes } from "./harness.js";

export const streams = area("streams");
const t = streams.check.bind(streams);
t("ReadableStream reads chunks then done", async () => {
  const reader = new ReadableStream({
    start(c) {
      c.enqueue("a");
      c.enqueue("b");
      c.close();
    },
  }).getReader();
  const a = await reader.read();
  const b = await reader.read();
  const end = await reader.read();
  return a.value === "a" && b.value === "b" && end.done;
});
t("pull-based source with backpressure", async () => {
  let pulls = 0;
  const s = new ReadableStream({
    pull(c) {
      pulls++;
      if (pulls > 3) c.close();
      else c.enqueue(pulls);
    },
  }, { highWaterMark: 0 });
  const seen = [];
  for await (const v of s) seen.push(v);
  return seen.join() === "1,2,3";
});
t("tee gives both branches every chunk", async () => {
  const [a, b] = new Response("tee").body.tee();
  const [x, y] = await Promise.all([readAll(a), readAll(b)]);
  return sameBytes(x, y) && x.length === 3;
});
t("cancel reaches the source", async () => {
  let reason;
  const s = new ReadableStream({ cancel(r) { reason = r; } });
  await s.cancel("stop");
  return reason === "stop";
});
t("BYOB reader fills the given view", async () => {
  const s = new ReadableStream({
    type: "bytes",
    pull(c) {
      const view = c.byobRequest.view;
      view[0] = 7;
      c.byobRequest.respond(1);
      c.close();
    },
  });
  const reader = s.getReader({ mode: "byob" });
  const { value } = await reader.read(new Uint8Array(4));
  return value.length === 1 && value[0] === 7;
});
t("ReadableStream.from an async iterable", async () => {
  async function* gen() {
    yield 1;
    yield 2;
  }
  const seen = [];
  for await (const v of ReadableStream.from(gen())) seen.push(v);
  return seen.join() === "1,2";
});
t("WritableStream write, close and backpressure", async () => {
  const seen = [];
  const w = new WritableStream({ write(chunk) { seen.push(chunk); } }, new CountQueuingStrategy({ highWaterMark: 1 }));
  const writer = w.getWriter();
  await writer.ready;
  await writer.write("x");
  await writer.close();
  return seen.join() === "x" && writer.desiredSize === 0;
});
t("abort reaches the sink", async () => {
  let reason;
  const w = new WritableStream({ abort(r) { reason = r; } });
  await w.abort("gone");
  return reason === "gone";
});
t("TransformStream and pipeThrough", async () => {
  const double = new TransformStream({ transform(chunk, c) { c.enqueue(chunk * 2); } });
  const out = [];
  const source = new ReadableStream({ start(c) { c.enqueue(1); c.enqueue(2); c.close(); } });
  for await (const v of source.pipeThrough(double)) out.push(v);
  return out.join() === "2,4";
});
t("pipeTo a WritableStream", async () => {
  const seen = [];
  await new Response("pipe").body.pipeTo(new WritableStream({ write(c) { seen.push(...c); } }));
  return seen.length === 4;
});
t("ByteLengthQueuingStrategy size", () => new ByteLengthQueuingStrategy({ highWaterMark: 8 }).size(bytes(1, 2)) === 2);
t("CountQueuingStrategy size", () => new CountQueuingStrategy({ highWaterMark: 2 }).size() === 1);

export const encoding = area("encoding");
const e = encoding.check.bind(encoding);
e("TextEncoder encodes UTF-8", () => sameBytes(new TextEncoder().encode("é€"), bytes(0xc3, 0xa9, 0xe2, 0x82, 0xac)));
e("TextEncoder.encodeInto", () => {
  const out = new Uint8Array(2);
  const { read, written } = new TextEncoder().encodeInto("aé", out);
  return read === 1 && written === 1;
});
e("TextDecoder decodes UTF-8 and drops the BOM", () =>
  new TextDecoder().decode(bytes(0xef, 0xbb, 0xbf, 0x68, 0x69)) === "hi");
e("TextDecoder fatal mode throws on bad bytes", () => {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes(0xff));
    return false;
  } catch (err) {
    return err instanceof TypeError;
  }
});
e("TextDecoder streaming across a split character", () => {
  const d = new TextDecoder();
  return d.decode(bytes(0xe2, 0x82), { stream: true }) + d.decode(bytes(0xac)) === "€";
});
e("TextDecoder utf-16le and latin1 labels", () =>
  new TextDecoder("utf-16le").decode(bytes(0x68, 0x00)) === "h" &&
  new TextDecoder("latin1").decode(bytes(0xe9)) === "é");
e("TextEncoderStream and TextDecoderStream", async () => {
  const text = await new Response(
    new Response("ok").body.pipeThrough(new TextDecoderStream()).pipeThrough(new TextEncoderStream()),
  ).text();
  return text === "ok";
});
