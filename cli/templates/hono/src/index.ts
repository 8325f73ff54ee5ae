// A Hono app: routes, JSON and `c.env`. Run `npm install`, then
// `outpost dev`.
import { Hono } from "hono";

type Bindings = { GREETING: string };

const app = new Hono<{ Bindings: Bindings }>();

app.get("/", (c) => c.text(`${c.env.GREETING} from Hono!`));
app.get("/api/hello/:name", (c) => c.json({ message: `${c.env.GREETING}, ${c.req.param("name")}` }));

export default app;
