// A Workers-style fetch handler: wpaas's js buildpack bundles it with
// esbuild and makes it a wasi:http component with componentize-js.
// Config vars are in process.env (read them in the handler: top-level
// code runs once, at build time, when the component is pre-initialised).

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  // console.log goes to the app's log (`wpaas logs`).
  console.log(`js-hello: ${request.method} ${url.pathname}${url.search}`);

  if (url.pathname === "/") {
    const who = url.searchParams.get("who") ?? "world";
    const greeting = process.env.GREETING ?? "unset";
    const dyno = process.env.DYNO ?? "none";
    return new Response(
      `Hello, ${who}, from JavaScript! (GREETING=${greeting})\n` +
        `method=${request.method} path=${url.pathname} dyno=${dyno}\n`,
      { headers: { "content-type": "text/plain" } },
    );
  }
  if (url.pathname === "/echo" && request.method === "POST") {
    const body = await request.text();
    return new Response(body, {
      headers: { "content-type": request.headers.get("content-type") ?? "text/plain" },
    });
  }
  return new Response("not found\n", { status: 404, headers: { "content-type": "text/plain" } });
}
