// Every request reaches this handler: see the `fetch` event of the Service Worker API.
interface FetchEvent extends Event {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): void;
}

addEventListener('fetch', ((event: FetchEvent) => event.respondWith(handle(event.request))) as EventListener);

async function handle(_request: Request): Promise<Response> {
  return new Response('Hello from TypeScript!', {
    status: 200,
    headers: { 'content-type': 'text/plain' },
  });
}
