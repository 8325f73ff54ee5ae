import { area, readAll, sameBytes } from "./harness.js";

export const url = area("url");
const u = url.check.bind(url);
u("URL parses and resolves", () => new URL("../b?c=1#h", "https://x.example/a/d").href === "https://x.example/b?c=1#h");
u("URL setters", () => {
  const x = new URL("https://x.example/");
  x.pathname = "/p q";
  x.searchParams.set("k", "v w");
  return x.href === "https://x.example/p%20q?k=v+w";
});
u("URL IDNA host", () => new URL("https://bücher.example/").host === "xn--bcher-kva.example");
u("URL rejects garbage", () => {
  try {
    new URL("not a url");
    return false;
  } catch (err) {
    return err instanceof TypeError;
  }
});
u("URL.canParse and URL.parse", () => URL.canParse("https://a.example") && URL.parse("nope") === null);
u("URLSearchParams sort, delete and size", () => {
  const p = new URLSearchParams("b=2&a=1&b=3");
  p.sort();
  p.delete("b", "3");
  return p.toString() === "a=1&b=2" && p.size === 2;
});
u("URLPattern matches and captures", () => {
  const p = new URLPattern({ pathname: "/books/:id" });
  const m = p.exec("https://x.example/books/42");
  return p.test("https://x.example/books/42") && m.pathname.groups.id === "42";
});

export const compression = area("compression");
for (const format of ["gzip", "deflate", "deflate-raw"]) {
  compression.check(`${format} round trip`, async () => {
    const input = new TextEncoder().encode("edge ".repeat(200));
    const packed = await readAll(new Response(input).body.pipeThrough(new CompressionStream(format)));
    const unpacked = await readAll(new Response(packed).body.pipeThrough(new DecompressionStream(format)));
    return packed.length < input.length && sameBytes(unpacked, input);
  });
}
compression.check("an unknown format is a TypeError", () => {
  try {
    new CompressionStream("brotli-ish");
    return false;
  } catch (err) {
    return err instanceof TypeError;
  }
});
