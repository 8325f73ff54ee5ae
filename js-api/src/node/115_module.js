// node:module - what of it a bundled worker can use: the list of built-in
// modules, isBuiltin, and createRequire for them. A created require()
// reaches built-ins only: the worker's own files are imported, not
// required at run time.
import assert from "node:assert";
import async_hooks from "node:async_hooks";
import buffer from "node:buffer";
import constants from "node:constants";
import crypto from "node:crypto";
import diagnostics_channel from "node:diagnostics_channel";
import dns from "node:dns";
import dnsPromises from "node:dns/promises";
import events from "node:events";
import fs from "node:fs";
import fsPromises from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import process from "node:process";
import stream from "node:stream";
import string_decoder from "node:string_decoder";
import timers from "node:timers";
import url from "node:url";
import util from "node:util";
import v8 from "node:v8";
import zlib from "node:zlib";

const BUILTINS = {
  assert,
  async_hooks,
  buffer,
  constants,
  crypto,
  diagnostics_channel,
  dns,
  "dns/promises": dnsPromises,
  events,
  fs,
  "fs/promises": fsPromises,
  http,
  https,
  net,
  path,
  process,
  stream,
  string_decoder,
  timers,
  url,
  util,
  v8,
  zlib,
};

const builtinModules = Object.keys(BUILTINS);

function isBuiltin(name) {
  return Object.hasOwn(BUILTINS, String(name).replace(/^node:/, ""));
}

/** A require() for built-in modules, as `createRequire(import.meta.url)` gives. */
function createRequire(_filename) {
  function require(id) {
    const name = String(id).replace(/^node:/, "");
    if (Object.hasOwn(BUILTINS, name)) return BUILTINS[name];
    const err = new Error(`Cannot find module '${id}': a created require() reaches built-in modules only; import the worker's own files`);
    err.code = "MODULE_NOT_FOUND";
    throw err;
  }
  require.resolve = (id) => {
    if (isBuiltin(id)) return `node:${String(id).replace(/^node:/, "")}`;
    throw new Error(`Cannot find module '${id}'`);
  };
  require.cache = Object.create(null);
  return require;
}

class Module {
  static builtinModules = builtinModules;
  static createRequire = createRequire;
  static isBuiltin = isBuiltin;
}

export default Module;
export { builtinModules, createRequire, isBuiltin, Module };
