import { area, bytes, readAll, sameBytes } from "./harness.js";

export const fetchTypes = area("fetch-types");
const t = fetchTypes.check.bind(fetchTypes);
t("Headers are case-insensitive and combine values", () => {
  const h = new Headers([["A", "1"], ["a", "2"]]);
  return h.get("a") === "1, 2" && h.has("A");
});
t("Headers iterate sorted, set-cookie kept apart", () => {
  const h = new Headers();
  h.append("b", "1");
  h.append("set-cookie", "x=1");
  h.append("set-cookie", "y=2");
  h.append("a", "0");
  return [...h.keys()].join() === "a,b,set-cookie,set-cookie" && h.getSetCookie().length === 2;
});
t("Headers reject an invalid name", () => {
  try {
    new Headers({ "bad name": "x" });
    return false;
  } catch (err) {
    return err instanceof TypeError;
  }
});
t("Request defaults", () => {
  const r = new Request("https://a.example/p?q");
  return r.method === "GET" && r.url === "https://a.example/p?q" && r.redirect === "follow" &&
    r.signal instanceof AbortSignal;
});
t("Request with a body reads it", async () =>
  (await new Request("https://a.example", { method: "POST", body: "x" }).text()) === "x");
t("Request refuses a GET with a body", () => {
  try {
    new Request("https://a.example", { body: "x" });
    return false;
  } catch (err) {
    return err instanceof TypeError;
  }
});
t("Request.clone keeps the body for both", async () => {
  const r = new Request("https://a.example", { method: "PUT", body: "dup" });
  const c = r.clone();
  return (await r.text()) === "dup" && (await c.text()) === "dup";
});
t("Response status and statusText", () => {
  const r = new Response(null, { status: 404, statusText: "Nope" });
  return r.status === 404 && r.statusText === "Nope" && !r.ok;
});
t("Response.json", async () => {
  const r = Response.json({ a: 1 }, { status: 201 });
  return r.status === 201 && r.headers.get("content-type") === "application/json" &&
    (await r.json()).a === 1;
});
t("Response.redirect", () => {
  const r = Response.redirect("https://a.example/next", 307);
  return r.status === 307 && r.headers.get("location") === "https://a.example/next";
});
t("Response.error", () => Response.error().type === "error");
t("Response body is used once", async () => {
  const r = new Response("once");
  await r.text();
  try {
    await r.text();
    return false;
  } catch (err) {
    return err instanceof TypeError && r.bodyUsed;
  }
});
t("Response arrayBuffer and bytes", async () => {
  const r = new Response(bytes(1, 2, 3));
  return sameBytes(new Uint8Array(await r.clone().arrayBuffer()), bytes(1, 2, 3)) &&
    sameBytes(await r.bytes(), bytes(1, 2, 3));
});
t("Blob size, type, slice and text", async () => {
  const b = new Blob(["ab", bytes(0x63)], { type: "text/plain" });
  return b.size === 3 && b.type === "text/plain" && (await b.slice(1).text()) === "bc";
});
t("Blob stream", async () => sameBytes(await readAll(new Blob(["hi"]).stream()), bytes(0x68, 0x69)));
t("File name and lastModified", () => {
  const f = new File(["x"], "a.txt", { lastModified: 5 });
  return f.name === "a.txt" && f.lastModified === 5 && f instanceof Blob;
});
t("FormData append, get and getAll", () => {
  const f = new FormData();
  f.append("a", "1");
  f.append("a", "2");
  f.set("b", new Blob(["x"]), "b.bin");
  return f.getAll("a").join() === "1,2" && f.get("b") instanceof File && f.get("b").name === "b.bin";
});
t("FormData round trip through a multipart Response", async () => {
  const f = new FormData();
  f.append("k", "v");
  const back = await new Response(f).formData();
  return back.get("k") === "v";
});
t("URL-encoded body as FormData", async () => {
  const r = new Response(new URLSearchParams("a=1&b=2"));
  return (await r.formData()).get("b") === "2";
});
