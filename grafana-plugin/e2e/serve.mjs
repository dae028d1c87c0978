// Serves the harness and proxies /api/v1/ to Sentinel Mesh, adding basic
// auth from the environment (never logged). Prints the listen address.
//   SENTINEL_URL=http://127.0.0.1:9464 [SENTINEL_USER=.. SENTINEL_PASSWORD=..] node e2e/serve.mjs
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const upstream = process.env.SENTINEL_URL ?? 'http://127.0.0.1:9464';
const auth = process.env.SENTINEL_USER
  ? 'Basic ' + Buffer.from(`${process.env.SENTINEL_USER}:${process.env.SENTINEL_PASSWORD ?? ''}`).toString('base64')
  : undefined;
const files = { '/': ['index.html', 'text/html'], '/harness.js': ['dist/harness.js', 'text/javascript'] };

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.startsWith('/api/v1/') && req.method === 'GET') {
      const r = await fetch(upstream + url.pathname + url.search, { headers: auth ? { Authorization: auth } : {} });
      res.writeHead(r.status, { 'Content-Type': 'application/json' });
      res.end(Buffer.from(await r.arrayBuffer()));
      return;
    }
    const f = files[url.pathname];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': f[1] });
    res.end(await readFile(join(dir, f[0])));
  } catch (e) {
    res.writeHead(502, { 'Content-Type': 'text/plain' }).end(String(e));
  }
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
