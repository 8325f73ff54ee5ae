// node:http - the client over fetch() (ext:outpost_node/100_http_client.js).
import { http } from "ext:outpost_node/100_http_client.js";

const { Agent, ClientRequest, createServer, get, globalAgent, IncomingMessage, METHODS, request, STATUS_CODES } = http;

export default http;
export { Agent, ClientRequest, createServer, get, globalAgent, IncomingMessage, METHODS, request, STATUS_CODES };
