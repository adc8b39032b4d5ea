// Gyre test app: application state from JavaScript through the Spin
// interfaces imported directly (fermyon:spin/*@2.0.0).
//   /kv/set/<key> (body) | /kv/get/<key> | /kv/keys | /kv/delete/<key>
//   /sql (body {"sql", "params"}) | /var/<name>
// Interface errors answer 409 with the error's tag (and payload).
import { Store } from 'fermyon:spin/key-value@2.0.0';
import { Connection } from 'fermyon:spin/sqlite@2.0.0';
import { get as getVariable } from 'fermyon:spin/variables@2.0.0';

addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

function text(status, body) {
  return new Response(body, { status, headers: { 'content-type': 'text/plain' } });
}

function errorName(e) {
  const payload = e && e.payload;
  if (payload && payload.tag) {
    return payload.val === undefined ? payload.tag : `${payload.tag}: ${payload.val}`;
  }
  return String(e);
}

function sqlParam(p) {
  if (p === null) return { tag: 'null' };
  if (typeof p === 'number') return Number.isInteger(p) ? { tag: 'integer', val: BigInt(p) } : { tag: 'real', val: p };
  return { tag: 'text', val: String(p) };
}

function sqlValue(v) {
  switch (v.tag) {
    case 'null': return null;
    case 'integer': return Number(v.val);
    case 'blob': return Array.from(v.val).map((b) => b.toString(16).padStart(2, '0')).join('');
    default: return v.val;
  }
}

async function handle(request) {
  const url = new URL(request.url);
  const parts = url.pathname.split('/').filter((p) => p.length > 0);
  const body = new Uint8Array(await request.arrayBuffer());
  try {
    if (parts[0] === 'kv') {
      const store = Store.open(url.searchParams.get('store') || 'default');
      const key = parts.slice(2).join('/');
      switch (parts[1]) {
        case 'set': store.set(key, body); return text(200, 'ok');
        case 'get': {
          const value = store.get(key);
          return value === undefined ? text(404, 'missing') : text(200, value);
        }
        case 'keys': return text(200, JSON.stringify(store.getKeys().sort()));
        case 'delete': store.delete(key); return text(200, 'ok');
      }
    }
    if (parts[0] === 'sql') {
      const req = JSON.parse(new TextDecoder().decode(body));
      const conn = Connection.open(url.searchParams.get('db') || 'default');
      const result = conn.execute(req.sql, (req.params || []).map(sqlParam));
      return text(200, JSON.stringify({
        columns: result.columns,
        rows: result.rows.map((r) => r.values.map(sqlValue)),
      }));
    }
    if (parts[0] === 'var') {
      return text(200, getVariable(parts[1]));
    }
  } catch (e) {
    return text(409, errorName(e));
  }
  return text(404, `no route ${url.pathname}`);
}
