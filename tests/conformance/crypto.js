import { area, bytes, sameBytes } from "./harness.js";

export const crypto_ = area("crypto");
const c = crypto_.check.bind(crypto_);
const enc = (s) => new TextEncoder().encode(s);
const subtle = () => crypto.subtle;

c("getRandomValues and randomUUID", () =>
  crypto.getRandomValues(new Uint8Array(8)).length === 8 && /^[0-9a-f-]{36}$/.test(crypto.randomUUID()));
c("Crypto, CryptoKey and SubtleCrypto are exposed", () =>
  typeof Crypto === "function" && typeof CryptoKey === "function" && typeof SubtleCrypto === "function");
c("digest SHA-1/256/384/512", async () => {
  const sizes = [];
  for (const alg of ["SHA-1", "SHA-256", "SHA-384", "SHA-512"]) {
    sizes.push((await subtle().digest(alg, enc("abc"))).byteLength);
  }
  return sizes.join() === "20,32,48,64";
});
c("HMAC sign and verify", async () => {
  const key = await subtle().generateKey({ name: "HMAC", hash: "SHA-256" }, true, ["sign", "verify"]);
  const sig = await subtle().sign("HMAC", key, enc("m"));
  return await subtle().verify("HMAC", key, sig, enc("m")) && !(await subtle().verify("HMAC", key, sig, enc("n")));
});
c("ECDSA P-256 sign and verify", async () => {
  const { privateKey, publicKey } = await subtle().generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const alg = { name: "ECDSA", hash: "SHA-256" };
  const sig = await subtle().sign(alg, privateKey, enc("m"));
  return subtle().verify(alg, publicKey, sig, enc("m"));
});
c("Ed25519 sign and verify", async () => {
  const { privateKey, publicKey } = await subtle().generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const sig = await subtle().sign("Ed25519", privateKey, enc("m"));
  return subtle().verify("Ed25519", publicKey, sig, enc("m"));
});
c("RSASSA-PKCS1-v1_5 and RSA-PSS sign and verify", async () => {
  const params = { modulusLength: 1024, publicExponent: bytes(1, 0, 1), hash: "SHA-256" };
  const pkcs = await subtle().generateKey({ name: "RSASSA-PKCS1-v1_5", ...params }, true, ["sign", "verify"]);
  const s1 = await subtle().sign("RSASSA-PKCS1-v1_5", pkcs.privateKey, enc("m"));
  const pss = await subtle().generateKey({ name: "RSA-PSS", ...params }, true, ["sign", "verify"]);
  const s2 = await subtle().sign({ name: "RSA-PSS", saltLength: 32 }, pss.privateKey, enc("m"));
  return await subtle().verify("RSASSA-PKCS1-v1_5", pkcs.publicKey, s1, enc("m")) &&
    await subtle().verify({ name: "RSA-PSS", saltLength: 32 }, pss.publicKey, s2, enc("m"));
});
c("RSA-OAEP encrypt and decrypt", async () => {
  const { privateKey, publicKey } = await subtle().generateKey(
    { name: "RSA-OAEP", modulusLength: 1024, publicExponent: bytes(1, 0, 1), hash: "SHA-256" }, true, ["encrypt", "decrypt"]);
  const ct = await subtle().encrypt({ name: "RSA-OAEP" }, publicKey, enc("m"));
  return new TextDecoder().decode(await subtle().decrypt({ name: "RSA-OAEP" }, privateKey, ct)) === "m";
});
for (const [name, params] of [
  ["AES-GCM", { iv: new Uint8Array(12) }],
  ["AES-CBC", { iv: new Uint8Array(16) }],
  ["AES-CTR", { counter: new Uint8Array(16), length: 64 }],
]) {
  c(`${name} encrypt and decrypt`, async () => {
    const key = await subtle().generateKey({ name, length: 256 }, true, ["encrypt", "decrypt"]);
    const ct = await subtle().encrypt({ name, ...params }, key, enc("secret"));
    const pt = await subtle().decrypt({ name, ...params }, key, ct);
    return new TextDecoder().decode(pt) === "secret";
  });
}
c("import and export raw", async () => {
  const raw = bytes(...new Array(16).fill(7));
  const key = await subtle().importKey("raw", raw, "AES-GCM", true, ["encrypt"]);
  return sameBytes(new Uint8Array(await subtle().exportKey("raw", key)), raw);
});
c("import and export jwk", async () => {
  const key = await subtle().generateKey({ name: "HMAC", hash: "SHA-256" }, true, ["sign"]);
  const jwk = await subtle().exportKey("jwk", key);
  const back = await subtle().importKey("jwk", jwk, { name: "HMAC", hash: "SHA-256" }, true, ["sign"]);
  return jwk.kty === "oct" && back.algorithm.name === "HMAC";
});
c("export spki and pkcs8, and import them back", async () => {
  const { privateKey, publicKey } = await subtle().generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const spki = await subtle().exportKey("spki", publicKey);
  const pkcs8 = await subtle().exportKey("pkcs8", privateKey);
  const alg = { name: "ECDSA", namedCurve: "P-256" };
  const pub = await subtle().importKey("spki", spki, alg, true, ["verify"]);
  const priv = await subtle().importKey("pkcs8", pkcs8, alg, true, ["sign"]);
  return pub.type === "public" && priv.type === "private";
});
c("PBKDF2 deriveBits", async () => {
  const key = await subtle().importKey("raw", enc("pw"), "PBKDF2", false, ["deriveBits"]);
  const bits = await subtle().deriveBits({ name: "PBKDF2", salt: enc("salt"), iterations: 1000, hash: "SHA-256" }, key, 256);
  return bits.byteLength === 32;
});
c("HKDF deriveKey", async () => {
  const key = await subtle().importKey("raw", enc("ikm"), "HKDF", false, ["deriveKey"]);
  const aes = await subtle().deriveKey(
    { name: "HKDF", salt: enc("s"), info: enc("i"), hash: "SHA-256" }, key, { name: "AES-GCM", length: 128 }, true, ["encrypt"]);
  return aes.algorithm.length === 128;
});
c("ECDH derives the same bits on both sides", async () => {
  const alg = { name: "ECDH", namedCurve: "P-256" };
  const a = await subtle().generateKey(alg, true, ["deriveBits"]);
  const b = await subtle().generateKey(alg, true, ["deriveBits"]);
  const ab = new Uint8Array(await subtle().deriveBits({ name: "ECDH", public: b.publicKey }, a.privateKey, 256));
  const ba = new Uint8Array(await subtle().deriveBits({ name: "ECDH", public: a.publicKey }, b.privateKey, 256));
  return sameBytes(ab, ba);
});
