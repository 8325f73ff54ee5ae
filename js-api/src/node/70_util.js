// node:util - formatting (format, inspect), promisify/callbackify,
// inherits, deprecate, deep equality, and the `types` checks.
import { core, primordials } from "ext:core/mod.js";
import { deepEqual } from "ext:outpost_node/01_deep_equal.js";

const {
  ArrayBufferIsView,
  ArrayIsArray,
  Error,
  JSONStringify,
  NumberIsNaN,
  ObjectDefineProperty,
  ObjectGetOwnPropertyDescriptors,
  ObjectGetPrototypeOf,
  ObjectIs,
  ObjectKeys,
  ObjectPrototypeToString,
  ObjectSetPrototypeOf,
  Promise,
  ReflectApply,
  String,
  SymbolFor,
  TypeError,
} = primordials;

const consoleMod = core.loadExtScript("ext:deno_web/01_console.js");

/** `util.inspect`: deno's inspector, without colours unless asked. */
function inspect(value, options = undefined) {
  const opts = typeof options === "object" && options !== null ? options : {};
  return consoleMod.inspect(value, {
    colors: opts.colors ?? false,
    depth: opts.depth ?? 2,
    compact: opts.compact ?? 3,
    sorted: opts.sorted ?? false,
    showHidden: opts.showHidden ?? false,
    breakLength: opts.breakLength ?? 80,
  });
}
inspect.custom = SymbolFor("nodejs.util.inspect.custom");
inspect.defaultOptions = { depth: 2, colors: false };

function formatWithOptions(options, first, ...args) {
  if (typeof first !== "string") {
    return [first, ...args].map((v) => (typeof v === "string" ? v : inspect(v, options))).join(" ");
  }
  let at = 0;
  let out = first.replace(/%([sdifjoOc%])/g, (match, kind) => {
    if (kind === "%") return "%";
    if (at >= args.length) return match;
    const value = args[at++];
    switch (kind) {
      case "s":
        return typeof value === "string" ? value : typeof value === "bigint" ? `${value}n` :
          typeof value === "object" && value !== null ? inspect(value, { ...options, depth: 0 }) : String(value);
      case "d":
        return typeof value === "bigint" ? `${value}n` : typeof value === "symbol" ? "NaN" : String(Number(value));
      case "i":
        return typeof value === "bigint" ? `${value}n` : String(parseInt(value));
      case "f":
        return typeof value === "symbol" ? "NaN" : String(parseFloat(value));
      case "j":
        try {
          return JSONStringify(value);
        } catch {
          return "[Circular]";
        }
      case "o":
        return inspect(value, { ...options, showHidden: true, depth: 4 });
      case "O":
        return inspect(value, options);
      case "c":
        return "";
    }
    return match;
  });
  for (; at < args.length; at++) {
    const value = args[at];
    out += ` ${typeof value === "string" ? value : inspect(value, options)}`;
  }
  return out;
}

function format(...args) {
  return formatWithOptions({}, ...args);
}

const kCustomPromisify = SymbolFor("nodejs.util.promisify.custom");

function promisify(original) {
  if (typeof original !== "function") throw new TypeError('The "original" argument must be of type function');
  if (original[kCustomPromisify]) return original[kCustomPromisify];
  function promisified(...args) {
    return new Promise((resolve, reject) => {
      ReflectApply(original, this, [...args, (err, ...values) => {
        if (err) reject(err);
        else resolve(values.length > 1 ? values : values[0]);
      }]);
    });
  }
  ObjectSetPrototypeOf(promisified, ObjectGetPrototypeOf(original));
  ObjectDefineProperty(promisified, kCustomPromisify, { value: promisified });
  return promisified;
}
promisify.custom = kCustomPromisify;

function callbackify(original) {
  if (typeof original !== "function") throw new TypeError('The "original" argument must be of type function');
  return function callbackified(...args) {
    const callback = args.pop();
    if (typeof callback !== "function") throw new TypeError("The last argument must be of type function");
    ReflectApply(original, this, args).then(
      (value) => queueMicrotask(() => callback(null, value)),
      (reason) => {
        if (!reason) {
          const wrapped = new Error("Promise was rejected with a falsy value");
          wrapped.reason = reason;
          reason = wrapped;
        }
        queueMicrotask(() => callback(reason));
      },
    );
  };
}

function inherits(constructor, superConstructor) {
  if (typeof superConstructor !== "function" || superConstructor.prototype === undefined) {
    throw new TypeError('The "superCtor" argument must be of type function');
  }
  ObjectDefineProperty(constructor, "super_", { value: superConstructor, writable: true, configurable: true });
  ObjectSetPrototypeOf(constructor.prototype, superConstructor.prototype);
}

function deprecate(fn, message) {
  let warned = false;
  return function deprecated(...args) {
    if (!warned) {
      warned = true;
      console.warn(`DeprecationWarning: ${message}`);
    }
    return new.target ? Reflect.construct(fn, args, new.target) : ReflectApply(fn, this, args);
  };
}

function debuglog() {
  const log = () => {};
  log.enabled = false;
  return log;
}

const tag = (value) => ObjectPrototypeToString(value);
const types = {
  isAnyArrayBuffer: (v) => v instanceof ArrayBuffer || v instanceof SharedArrayBuffer,
  isArrayBuffer: (v) => v instanceof ArrayBuffer,
  isArrayBufferView: (v) => ArrayBufferIsView(v),
  isAsyncFunction: (v) => typeof v === "function" && tag(v) === "[object AsyncFunction]",
  isBigInt64Array: (v) => v instanceof BigInt64Array,
  isBigUint64Array: (v) => v instanceof BigUint64Array,
  isBooleanObject: (v) => typeof v === "object" && tag(v) === "[object Boolean]",
  isBoxedPrimitive: (v) =>
    typeof v === "object" && v !== null &&
    ["[object Boolean]", "[object Number]", "[object String]", "[object Symbol]", "[object BigInt]"].includes(tag(v)),
  isDataView: (v) => v instanceof DataView,
  isDate: (v) => v instanceof Date,
  isFloat32Array: (v) => v instanceof Float32Array,
  isFloat64Array: (v) => v instanceof Float64Array,
  isGeneratorFunction: (v) =>
    typeof v === "function" && ["[object GeneratorFunction]", "[object AsyncGeneratorFunction]"].includes(tag(v)),
  isGeneratorObject: (v) => tag(v) === "[object Generator]",
  isInt8Array: (v) => v instanceof Int8Array,
  isInt16Array: (v) => v instanceof Int16Array,
  isInt32Array: (v) => v instanceof Int32Array,
  isMap: (v) => v instanceof Map,
  isMapIterator: (v) => tag(v) === "[object Map Iterator]",
  isNativeError: (v) => v instanceof Error,
  isNumberObject: (v) => typeof v === "object" && tag(v) === "[object Number]",
  isPromise: (v) => v instanceof Promise,
  isProxy: () => false,
  isRegExp: (v) => v instanceof RegExp,
  isSet: (v) => v instanceof Set,
  isSetIterator: (v) => tag(v) === "[object Set Iterator]",
  isSharedArrayBuffer: (v) => v instanceof SharedArrayBuffer,
  isStringObject: (v) => typeof v === "object" && tag(v) === "[object String]",
  isSymbolObject: (v) => typeof v === "object" && tag(v) === "[object Symbol]",
  isTypedArray: (v) => ArrayBufferIsView(v) && !(v instanceof DataView),
  isUint8Array: (v) => v instanceof Uint8Array,
  isUint8ClampedArray: (v) => v instanceof Uint8ClampedArray,
  isUint16Array: (v) => v instanceof Uint16Array,
  isUint32Array: (v) => v instanceof Uint32Array,
  isWeakMap: (v) => v instanceof WeakMap,
  isWeakSet: (v) => v instanceof WeakSet,
};

function isDeepStrictEqual(a, b) {
  return deepEqual(a, b, true);
}

function stripVTControlCharacters(text) {
  // deno-lint-ignore no-control-regex
  return String(text).replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, "");
}

function toUSVString(text) {
  return String(text).toWellFormed();
}

const isArray = ArrayIsArray;
const isBoolean = (v) => typeof v === "boolean";
const isFunction = (v) => typeof v === "function";
const isNull = (v) => v === null;
const isNullOrUndefined = (v) => v === null || v === undefined;
const isNumber = (v) => typeof v === "number";
const isObject = (v) => v !== null && typeof v === "object";
const isPrimitive = (v) => v === null || (typeof v !== "object" && typeof v !== "function");
const isString = (v) => typeof v === "string";
const isSymbol = (v) => typeof v === "symbol";
const isUndefined = (v) => v === undefined;
const isRegExp = types.isRegExp;
const isDate = types.isDate;
const isError = types.isNativeError;

const util = {
  callbackify,
  debuglog,
  deprecate,
  format,
  formatWithOptions,
  inherits,
  inspect,
  isArray,
  isBoolean,
  isDate,
  isDeepStrictEqual,
  isError,
  isFunction,
  isNull,
  isNullOrUndefined,
  isNumber,
  isObject,
  isPrimitive,
  isRegExp,
  isString,
  isSymbol,
  isUndefined,
  promisify,
  stripVTControlCharacters,
  TextDecoder,
  TextEncoder,
  toUSVString,
  types,
};



export default util;
export {
  callbackify,
  debuglog,
  deprecate,
  format,
  formatWithOptions,
  inherits,
  inspect,
  isArray,
  isBoolean,
  isDate,
  isDeepStrictEqual,
  isError,
  isFunction,
  isNull,
  isNullOrUndefined,
  isNumber,
  isObject,
  isPrimitive,
  isRegExp,
  isString,
  isSymbol,
  isUndefined,
  promisify,
  stripVTControlCharacters,
  toUSVString,
  types,
};

const { TextDecoder: UtilTextDecoder, TextEncoder: UtilTextEncoder } = util;
export { UtilTextDecoder as TextDecoder, UtilTextEncoder as TextEncoder };
