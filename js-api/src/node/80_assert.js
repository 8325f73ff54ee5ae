// node:assert - the assertion functions and AssertionError, strict and
// legacy (loose) forms; node:assert/strict is the strict set.
import { primordials } from "ext:core/mod.js";
import { deepEqual } from "ext:outpost_node/01_deep_equal.js";
import { inspect } from "node:util";

const { Error, ObjectAssign, ObjectIs, ObjectKeys, PromiseResolve, RegExpPrototypeTest, TypeError } = primordials;

class AssertionError extends Error {
  constructor(options) {
    const { message, actual, expected, operator } = options;
    super(message ?? `${inspect(actual)} ${operator} ${inspect(expected)}`);
    this.name = "AssertionError";
    this.code = "ERR_ASSERTION";
    this.actual = actual;
    this.expected = expected;
    this.operator = operator;
    this.generatedMessage = message === undefined;
  }
}

function fail(actual, expected, message, operator) {
  if (message instanceof Error) throw message;
  throw new AssertionError({ actual, expected, message, operator });
}

function ok(value, message = undefined) {
  if (!value) {
    fail(value, true, message ?? (arguments.length === 0 ? "No value argument passed to `assert.ok()`" :
      "The expression evaluated to a falsy value"), "==");
  }
}

const checks = {
  equal: (a, b) => a == b || (a !== a && b !== b),
  notEqual: (a, b) => !(a == b || (a !== a && b !== b)),
  strictEqual: (a, b) => ObjectIs(a, b),
  notStrictEqual: (a, b) => !ObjectIs(a, b),
  deepEqual: (a, b) => deepEqual(a, b, false),
  notDeepEqual: (a, b) => !deepEqual(a, b, false),
  deepStrictEqual: (a, b) => deepEqual(a, b, true),
  notDeepStrictEqual: (a, b) => !deepEqual(a, b, true),
};
const comparisons = {};
for (const name of ObjectKeys(checks)) {
  comparisons[name] = function (actual, expected, message = undefined) {
    if (!checks[name](actual, expected)) fail(actual, expected, message, name);
  };
}

/** Whether `error` matches what `throws`/`rejects` expect. */
function matches(error, expected) {
  if (expected === undefined) return true;
  if (typeof expected === "function") {
    if (expected.prototype !== undefined && error instanceof expected) return true;
    if (Error.isPrototypeOf(expected) || expected === Error) return false;
    return expected.call({}, error) === true;
  }
  if (expected instanceof RegExp) return RegExpPrototypeTest(expected, String(error));
  if (typeof expected === "object" && expected !== null) {
    for (const key of ObjectKeys(expected)) {
      const want = expected[key];
      const got = error?.[key];
      if (want instanceof RegExp && typeof got === "string") {
        if (!RegExpPrototypeTest(want, got)) return false;
      } else if (!deepEqual(got, want, true)) {
        return false;
      }
    }
    if (expected instanceof Error) return error?.name === expected.name && error?.message === expected.message;
    return true;
  }
  throw new TypeError('The "expected" argument must be a function, a RegExp or an object');
}

const NONE = Symbol("no exception");

function throws(fn, expected = undefined, message = undefined) {
  if (typeof expected === "string") {
    message = expected;
    expected = undefined;
  }
  let caught = NONE;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  if (caught === NONE) fail(undefined, expected, message ?? "Missing expected exception.", "throws");
  if (!matches(caught, expected)) {
    if (message !== undefined) fail(caught, expected, message, "throws");
    throw caught;
  }
}

function doesNotThrow(fn, _expected = undefined, message = undefined) {
  try {
    fn();
  } catch (err) {
    fail(err, undefined, message ?? `Got unwanted exception.\nActual message: "${err?.message}"`, "doesNotThrow");
  }
}

async function rejects(promiseOrFn, expected = undefined, message = undefined) {
  if (typeof expected === "string") {
    message = expected;
    expected = undefined;
  }
  let caught = NONE;
  try {
    await (typeof promiseOrFn === "function" ? promiseOrFn() : PromiseResolve(promiseOrFn));
  } catch (err) {
    caught = err;
  }
  if (caught === NONE) fail(undefined, expected, message ?? "Missing expected rejection.", "rejects");
  if (!matches(caught, expected)) {
    if (message !== undefined) fail(caught, expected, message, "rejects");
    throw caught;
  }
}

async function doesNotReject(promiseOrFn, _expected = undefined, message = undefined) {
  try {
    await (typeof promiseOrFn === "function" ? promiseOrFn() : promiseOrFn);
  } catch (err) {
    fail(err, undefined, message ?? "Got unwanted rejection.", "doesNotReject");
  }
}

function match(text, pattern, message = undefined) {
  if (!RegExpPrototypeTest(pattern, text)) fail(text, pattern, message, "match");
}

function doesNotMatch(text, pattern, message = undefined) {
  if (RegExpPrototypeTest(pattern, text)) fail(text, pattern, message, "doesNotMatch");
}

function ifError(value) {
  if (value !== null && value !== undefined) throw value;
}

function assertFail(message = "Failed") {
  if (message instanceof Error) throw message;
  throw new AssertionError({ message, operator: "fail" });
}

const common = {
  AssertionError,
  doesNotMatch,
  doesNotReject,
  doesNotThrow,
  fail: assertFail,
  ifError,
  match,
  ok,
  rejects,
  throws,
};

/** `assert(value)` with the legacy (loose) comparisons. */
function assert(value, message) {
  ok(value, message);
}
ObjectAssign(assert, common, comparisons);

/** `assert/strict`: the same, with every comparison strict. */
function strict(value, message) {
  ok(value, message);
}
ObjectAssign(strict, common, comparisons, {
  equal: comparisons.strictEqual,
  notEqual: comparisons.notStrictEqual,
  deepEqual: comparisons.deepStrictEqual,
  notDeepEqual: comparisons.notDeepStrictEqual,
});
assert.strict = strict;
strict.strict = strict;

const {
  deepEqual: looseDeepEqual,
  deepStrictEqual,
  equal,
  notDeepEqual,
  notDeepStrictEqual,
  notEqual,
  notStrictEqual,
  strictEqual,
} = comparisons;

export default assert;
export {
  AssertionError,
  deepStrictEqual,
  doesNotMatch,
  doesNotReject,
  doesNotThrow,
  equal,
  assertFail as fail,
  ifError,
  looseDeepEqual as deepEqual,
  match,
  notDeepEqual,
  notDeepStrictEqual,
  notEqual,
  notStrictEqual,
  ok,
  rejects,
  strict,
  strictEqual,
  throws,
};
