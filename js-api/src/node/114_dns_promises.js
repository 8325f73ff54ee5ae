// node:dns/promises - the promise form of node:dns (113_dns.js).
import { promises } from "node:dns";

const { getServers, lookup, resolve, resolve4, resolve6, reverse } = promises;

export default promises;
export { getServers, lookup, resolve, resolve4, resolve6, reverse };
