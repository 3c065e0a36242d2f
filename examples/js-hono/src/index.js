// Hono, as on Cloudflare Workers (service-worker syntax): the app's fetch
// answers each fetch event. wpaas installs `hono` from package-lock.json,
// bundles it with esbuild and makes a wasi:http component of the bundle.
import { Hono } from "hono";

const app = new Hono();

app.use(async (c, next) => {
  await next();
  console.log(`js-hono: ${c.req.method} ${c.req.path} -> ${c.res.status}`);
});

app.get("/", (c) => c.text(`Hello from Hono on wpaas! (GREETING=${process.env.GREETING ?? "unset"})\n`));

app.get("/users/:id", (c) => c.json({ id: Number(c.req.param("id")), name: `user ${c.req.param("id")}` }));

app.post("/echo", async (c) => c.json({ received: await c.req.json() }, 201));

app.notFound((c) => c.text(`no route for ${c.req.method} ${c.req.path}\n`, 404));

addEventListener("fetch", (event) => event.respondWith(app.fetch(event.request)));
