// A minimal test harness for checks that run inside a real worker. Each
// check is a function returning (or resolving to) true; anything else, or a
// throw, is a failure with its reason.
export function area(name) {
  const checks = [];
  return {
    name,
    checks,
    check(label, fn) {
      checks.push({ label, fn });
    },
  };
}

export async function run(areas) {
  const report = {};
  for (const { name, checks } of areas) {
    const failures = {};
    let passed = 0;
    for (const { label, fn } of checks) {
      try {
        const outcome = await fn();
        if (outcome === true) passed++;
        else failures[label] = `returned ${String(outcome)}`;
      } catch (err) {
        failures[label] = `threw ${err?.name ?? "error"}: ${err?.message ?? String(err)}`;
      }
    }
    report[name] = { passed, total: checks.length, failures };
  }
  return report;
}

export const bytes = (...values) => new Uint8Array(values);
export const sameBytes = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
export async function readAll(stream) {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
