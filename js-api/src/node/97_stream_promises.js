// node:stream/promises - pipeline and finished as promises.
import { promises } from "node:stream";

const { finished, pipeline } = promises;

export default promises;
export { finished, pipeline };
