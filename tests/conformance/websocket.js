// WebSockets inside a worker: WebSocketPair, the WebSocket object's shape and
// errors, Response's webSocket member, and an outbound socket the address
// policy refuses. tests/integration/websocket.rs covers real clients and
// servers.
import { area } from "./harness.js";

export const websocket = area("websocket");
const w = websocket.check.bind(websocket);

w("WebSocketPair gives two WebSockets", () => {
  const pair = new WebSocketPair();
  return pair[0] instanceof WebSocket && pair[1] instanceof WebSocket && pair[0] !== pair[1];
});
w("readyState constants", () =>
  WebSocket.CONNECTING === 0 && WebSocket.OPEN === 1 && WebSocket.CLOSING === 2 && WebSocket.CLOSED === 3 &&
  new WebSocketPair()[1].CLOSED === 3);
w("the server end opens on accept, once", () => {
  const { 1: server } = new WebSocketPair();
  const before = server.readyState;
  server.accept();
  try {
    server.accept();
    return "accepted twice";
  } catch (err) {
    return before === WebSocket.CONNECTING && server.readyState === WebSocket.OPEN && err instanceof TypeError;
  }
});
w("send before accept is an InvalidStateError", () => {
  const { 1: server } = new WebSocketPair();
  try {
    server.send("too early");
    return "sent";
  } catch (err) {
    return err instanceof DOMException && err.name === "InvalidStateError";
  }
});
w("the client end cannot be accepted", () => {
  const { 0: client } = new WebSocketPair();
  try {
    client.accept();
    return "accepted";
  } catch (err) {
    return err instanceof TypeError;
  }
});
w("close codes are checked", () => {
  const { 1: server } = new WebSocketPair();
  server.accept();
  try {
    server.close(1001);
    return "closed with 1001";
  } catch (err) {
    if (!(err instanceof DOMException && err.name === "InvalidAccessError")) return `${err}`;
  }
  server.close(1000, "bye");
  return server.readyState === WebSocket.CLOSING;
});
w("onmessage and onclose are event handler attributes", () => {
  const { 1: server } = new WebSocketPair();
  const handler = () => {};
  server.onmessage = handler;
  return server.onmessage === handler && server.onclose === null && "onopen" in server && "onerror" in server;
});
w("a 101 Response carries the client end", () => {
  const { 0: client } = new WebSocketPair();
  const response = new Response(null, { status: 101, webSocket: client });
  return response.status === 101 && response instanceof Response;
});
w("webSocket needs status 101 and a pair's client end", () => {
  const { 0: client, 1: server } = new WebSocketPair();
  const refuses = (init) => {
    try {
      new Response(null, init);
      return false;
    } catch (err) {
      return err instanceof TypeError;
    }
  };
  return refuses({ status: 200, webSocket: client }) && refuses({ status: 101, webSocket: server }) &&
    refuses({ status: 101, webSocket: {} });
});
w("Response keeps its statics and identity", async () => {
  const json = Response.json({ a: 1 });
  return json instanceof Response && new Response("x").constructor === Response &&
    Response.redirect("https://example.com/", 302).status === 302 && (await json.json()).a === 1;
});
w("new WebSocket refuses a non-ws URL", () => {
  try {
    new WebSocket("ftp://example.com/");
    return "constructed";
  } catch (err) {
    return err instanceof DOMException && err.name === "SyntaxError";
  }
});
w("an outbound socket to loopback fails with error and close 1006", () =>
  new Promise((resolve) => {
    const socket = new WebSocket("ws://127.0.0.1:8080/");
    let error = "";
    socket.onerror = (event) => {
      error = event.message;
    };
    socket.onclose = (event) =>
      resolve(error.includes("loopback") && event.code === 1006 && socket.readyState === WebSocket.CLOSED);
  }));
