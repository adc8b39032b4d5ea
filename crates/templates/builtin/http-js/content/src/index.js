// Every request reaches this handler: see the `fetch` event of the Service Worker API.
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  return new Response('Hello from JavaScript!', {
    status: 200,
    headers: { 'content-type': 'text/plain' },
  });
}
