;{
   // Precompiled regular expressions
   const precompile = (r) => { r.exec('a'); r.exec('\u1000'); };precompile(/\/status\/(\d+)$/);}// Gyre test app for the Spin JS SDK tooling (wasi:http/incoming-handler@0.2.x).
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  if (url.pathname.endsWith('/hello')) {
    return new Response('Hello from JavaScript', { headers: { 'content-type': 'text/plain' } });
  }
  if (url.pathname.endsWith('/echo')) {
    const body = new Uint8Array(await request.arrayBuffer());
    const digest = await crypto.subtle.digest('SHA-256', body);
    const hex = Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, '0')).join('');
    return new Response(body, { headers: { 'x-body-sha256': hex } });
  }
  if (url.pathname.endsWith('/headers')) {
    const headers = {};
    for (const [k, v] of request.headers) headers[k] = v;
    return new Response(JSON.stringify(headers), { headers: { 'content-type': 'application/json' } });
  }
  const status = url.pathname.match(/\/status\/(\d+)$/);
  if (status) {
    return new Response(null, { status: Number(status[1]) });
  }
  if (url.pathname.endsWith('/raise')) {
    throw new Error('this route raises on purpose');
  }
  return new Response(`path=${url.pathname}${url.search}`);
}

//# sourceMappingURL=precompiled-source.js.map
