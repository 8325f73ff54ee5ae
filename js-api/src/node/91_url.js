// node:url - the WHATWG URL classes, file URL conversion (POSIX paths),
// and the legacy `parse`/`format`/`resolve` on top of URL.
import { primordials } from "ext:core/mod.js";

const { encodeURIComponent, StringPrototypeReplace, TypeError } = primordials;

function fileURLToPath(url) {
  const parsed = typeof url === "string" ? new URL(url) : url;
  if (parsed.protocol !== "file:") throw new TypeError("The URL must be of scheme file");
  if (parsed.hostname !== "") throw new TypeError('File URL host must be "localhost" or empty on linux');
  return decodeURIComponent(parsed.pathname);
}

function pathToFileURL(path) {
  const encoded = path.split("/").map((part) => encodeURIComponent(part)).join("/");
  return new URL(`file://${encoded.startsWith("/") ? "" : "/"}${encoded}`);
}

/** The legacy URL object of `url.parse`, from a WHATWG URL where it parses. */
function parse(text, parseQueryString = false) {
  let url;
  try {
    url = new URL(text);
  } catch {
    const [pathname, search = ""] = text.split("?");
    const query = search === "" ? null : search;
    return {
      protocol: null,
      slashes: null,
      auth: null,
      host: null,
      port: null,
      hostname: null,
      hash: null,
      search: query === null ? null : `?${query}`,
      query: parseQueryString ? Object.fromEntries(new URLSearchParams(search)) : query,
      pathname,
      path: text,
      href: text,
    };
  }
  const search = url.search === "" ? null : url.search;
  return {
    protocol: url.protocol,
    slashes: true,
    auth: url.username === "" ? null : url.password === "" ? url.username : `${url.username}:${url.password}`,
    host: url.host,
    port: url.port === "" ? null : url.port,
    hostname: url.hostname,
    hash: url.hash === "" ? null : url.hash,
    search,
    query: parseQueryString ? Object.fromEntries(url.searchParams) : search === null ? null : search.slice(1),
    pathname: url.pathname,
    path: `${url.pathname}${url.search}`,
    href: url.href,
  };
}

function format(url) {
  if (typeof url === "string") return url;
  if (url instanceof URL) return url.href;
  const auth = url.auth ? `${url.auth}@` : "";
  const host = url.host ?? `${url.hostname ?? ""}${url.port ? `:${url.port}` : ""}`;
  const protocol = url.protocol ? (url.protocol.endsWith(":") ? url.protocol : `${url.protocol}:`) : "";
  const slashes = url.slashes || /^(https?|ftp|file|wss?):$/.test(protocol) ? "//" : "";
  let search = url.search ?? "";
  if (search === "" && url.query && typeof url.query === "object") {
    const query = new URLSearchParams(url.query).toString();
    if (query !== "") search = `?${query}`;
  }
  return `${protocol}${host || auth ? slashes : ""}${auth}${host}${url.pathname ?? ""}${search}${url.hash ?? ""}`;
}

function resolve(from, to) {
  const base = new URL(from, "resolve://");
  const resolved = new URL(to, base);
  if (resolved.protocol === "resolve:") {
    return StringPrototypeReplace(resolved.href, "resolve://", "");
  }
  return resolved.href;
}

function domainToASCII(domain) {
  try {
    return new URL(`http://${domain}`).hostname;
  } catch {
    return "";
  }
}

function domainToUnicode(domain) {
  return domain;
}

const url = {
  domainToASCII,
  domainToUnicode,
  fileURLToPath,
  format,
  parse,
  pathToFileURL,
  resolve,
  URL,
  URLSearchParams,
};

const WhatwgURL = URL;
const WhatwgURLSearchParams = URLSearchParams;
export default url;
export {
  domainToASCII,
  domainToUnicode,
  fileURLToPath,
  format,
  parse,
  pathToFileURL,
  resolve,
  WhatwgURL as URL,
  WhatwgURLSearchParams as URLSearchParams,
};
