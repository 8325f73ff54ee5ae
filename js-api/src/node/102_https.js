// node:https - the client over fetch() (ext:outpost_node/100_http_client.js).
import { https } from "ext:outpost_node/100_http_client.js";

const { Agent, ClientRequest, createServer, get, globalAgent, IncomingMessage, METHODS, request, STATUS_CODES } = https;

export default https;
export { Agent, ClientRequest, createServer, get, globalAgent, IncomingMessage, METHODS, request, STATUS_CODES };
