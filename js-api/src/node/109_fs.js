// node:fs - 107_fs.js with `promises` (108_fs_promises.js).
import fs from "ext:outpost_node/107_fs.js";
import promises from "node:fs/promises";

export * from "ext:outpost_node/107_fs.js";
export { promises };
export default { ...fs, promises };
