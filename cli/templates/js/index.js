// {{name}}: a Workers-style fetch handler. `wpaas deploy` bundles it (and
// any npm dependencies in package.json) with esbuild and makes it a
// WebAssembly component with componentize-js; `wpaas config:set` values are
// in process.env (read them inside the handler).

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  console.log(`${request.method} ${url.pathname}`);
  return new Response(`Hello from {{name}}! (${request.method} ${url.pathname})\n`, {
    headers: { "content-type": "text/plain" },
  });
}
