// A visit counter and a small JSON store on the app's key-value data, and
// its config, through the platform's "wpaas" module.
//
//   POST   /visit          counts a visit in bucket `counter`, atomically; the count
//   GET    /visits         the count
//   PUT    /json/KEY       stores the body (JSON) under KEY
//   GET    /json/KEY       the stored JSON (404 if none)
//   DELETE /json/KEY       removes it
//   GET    /json           every stored key
//   GET    /config?key=K   the config var K
//
// Attach the bucket first: wpaas kv:create counter -a APP
import { kv, config } from "wpaas";

const BUCKET = "counter";
const JSON_PREFIX = "json:";

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

const text = (body, status = 200) =>
  new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
const json = (value) =>
  new Response(JSON.stringify(value), { headers: { "content-type": "application/json" } });

async function handle(request) {
  try {
    return await route(request);
  } catch (e) {
    if (e instanceof kv.NoSuchStore) {
      return text(`attach the bucket first: wpaas kv:create ${BUCKET}\n`, 503);
    }
    if (e instanceof kv.KvError) {
      return text(`${e.message}\n`, 500);
    }
    throw e;
  }
}

async function route(request) {
  const url = new URL(request.url);
  const { pathname: path } = url;
  const method = request.method;
  if (path === "/") {
    return text("js-kv: POST /visit, GET /visits, PUT|GET|DELETE /json/KEY, GET /json, GET /config?key=K\n");
  }
  if (path === "/config") {
    const key = url.searchParams.get("key") ?? "";
    const value = config.get(key);
    return text(value === undefined ? `${key} is not set\n` : `${key}=${value}\n`);
  }
  const bucket = kv.open(BUCKET);
  if (method === "POST" && path === "/visit") {
    return text(`${bucket.increment("visits")}\n`);
  }
  if (method === "GET" && path === "/visits") {
    return text(`${bucket.getText("visits") ?? 0}\n`);
  }
  if (method === "GET" && path === "/json") {
    const keys = bucket.keys().filter((k) => k.startsWith(JSON_PREFIX));
    return json(keys.map((k) => k.slice(JSON_PREFIX.length)));
  }
  if (path.startsWith("/json/")) {
    const key = JSON_PREFIX + decodeURIComponent(path.slice("/json/".length));
    if (method === "PUT") {
      let value;
      try {
        value = JSON.parse(await request.text());
      } catch {
        return text("not JSON\n", 400);
      }
      bucket.setJson(key, value);
      return text("stored\n");
    }
    if (method === "GET") {
      return bucket.exists(key) ? json(bucket.getJson(key)) : text("not found\n", 404);
    }
    if (method === "DELETE") {
      bucket.delete(key);
      return text("deleted\n");
    }
  }
  return text("not found\n", 404);
}
