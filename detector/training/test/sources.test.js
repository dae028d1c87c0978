import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fetchPrometheus, parseTime, parseDuration } from '../src/sources/prometheus.js';
import { parseCsv, loadCsv } from '../src/sources/csv.js';

// A minimal Prometheus /api/v1/query_range on 127.0.0.1 that serves two series
// (one with a gap) and records the requests.
async function fakePrometheus({ auth } = {}) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const u = new URL(req.url, 'http://x');
    const params = new URLSearchParams(req.method === 'POST' ? body : u.search);
    requests.push({ method: req.method, path: u.pathname, params, headers: req.headers });
    const send = (code, doc) => {
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(doc));
    };
    if (auth && req.headers.authorization !== auth) return send(401, { status: 'error', errorType: 'unauthorized', error: 'bad credentials' });
    if (u.pathname !== '/prom/api/v1/query_range') return send(404, { status: 'error', error: 'not found' });
    if (params.get('query') === 'broken(') return send(400, { status: 'error', errorType: 'bad_data', error: 'parse error at char 8' });
    const start = Number(params.get('start'));
    const end = Number(params.get('end'));
    const step = Number(params.get('step'));
    const a = [];
    const b = [];
    for (let t = start; t <= end + 1e-9; t += step) {
      a.push([t, String(t / 60)]);
      if (Math.round(t / 60) % 10 !== 3) b.push([t, String(2 * (t / 60))]); // gaps
    }
    send(200, { status: 'success', data: { resultType: 'matrix', result: [{ metric: { __name__: 'm', job: 'a' }, values: a }, { metric: { __name__: 'm', job: 'b' }, values: b }] } });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/prom/`;
  return { url, requests, close: () => new Promise((r) => server.close(r)) };
}

test('prometheus: query_range with basic auth, chunking and gaps', async () => {
  const p = await fakePrometheus({ auth: 'Basic ' + Buffer.from('alice:s3cret').toString('base64') });
  try {
    // 25,000 steps of 60 s: three chunks of at most 10,000 points
    const start = 1_700_000_000 - (1_700_000_000 % 60);
    const end = start + 24_999 * 60;
    const r = await fetchPrometheus({ url: p.url, query: 'rate(m[5m])', start: String(start), end: String(end), step: '1m', username: 'alice', password: 's3cret' });
    assert.equal(p.requests.length, 3);
    for (const q of p.requests) {
      assert.equal(q.method, 'POST');
      assert.equal(q.params.get('query'), 'rate(m[5m])');
      assert.equal(q.params.get('step'), '60');
      assert.ok((Number(q.params.get('end')) - Number(q.params.get('start'))) / 60 + 1 <= 10000);
    }
    assert.equal(r.series.length, 2);
    const a = r.series.find((s) => s.name.includes('"a"'));
    const b = r.series.find((s) => s.name.includes('"b"'));
    assert.equal(a.name, '{__name__="m",job="a"}');
    assert.equal(a.values.length, 25000);
    assert.ok(a.values.every(Number.isFinite), 'chunks overlap or leave holes');
    for (let i = 0; i < 25000; i++) assert.equal(a.values[i], (start + i * 60) / 60);
    const gaps = b.values.filter(Number.isNaN).length;
    assert.ok(gaps > 2000 && gaps < 3000, `${gaps} gaps`);
    assert.equal(r.step, 60);
  } finally {
    await p.close();
  }
});

test('prometheus: bearer auth, errors are reported', async () => {
  const p = await fakePrometheus({ auth: 'Bearer tok' });
  try {
    const r = await fetchPrometheus({ url: p.url, query: 'm', start: '1000', end: '4000', step: 60, bearerToken: 'tok' });
    assert.equal(r.series[0].values.length, 51);
    await assert.rejects(fetchPrometheus({ url: p.url, query: 'm', start: '1000', end: '4000', step: 60, bearerToken: 'wrong' }), /HTTP 401.*unauthorized: bad credentials/);
    await assert.rejects(fetchPrometheus({ url: p.url, query: 'broken(', start: '1000', end: '4000', step: 60, bearerToken: 'tok' }), /HTTP 400.*bad_data/);
    await assert.rejects(fetchPrometheus({ url: p.url, query: 'm', start: '4000', end: '1000', bearerToken: 'tok' }), /must be after/);
    await assert.rejects(fetchPrometheus({ url: p.url, query: 'm', bearerToken: 'tok', username: 'x' }), /not both/);
    await assert.rejects(fetchPrometheus({ url: 'http://127.0.0.1:1/', query: 'm', start: '1000', end: '4000' }), /cannot query/);
  } finally {
    await p.close();
  }
});

test('prometheus: time and duration parsing', () => {
  assert.equal(parseTime('now', 1000), 1000);
  assert.equal(parseTime('now-2h', 10000), 2800);
  assert.equal(parseTime('2023-11-14T22:13:20Z'), 1700000000);
  assert.equal(parseTime('1700000000'), 1700000000);
  assert.throws(() => parseTime('yesterday'), /cannot parse time/);
  assert.equal(parseDuration('5m'), 300);
  assert.equal(parseDuration('15'), 15);
  assert.throws(() => parseDuration('5 minutes'), /duration/);
});

test('csv: header, formats, gaps', async () => {
  const pts = parseCsv('timestamp,value\n1700000000,1\n1700000060,2.5\n# comment\n\n2023-11-14T22:16:20Z,NaN\n1700000240000,4\n', 't.csv');
  assert.deepEqual(pts.slice(0, 2), [[1700000000, 1], [1700000060, 2.5]]);
  assert.equal(pts[2][0], 1700000180);
  assert.ok(Number.isNaN(pts[2][1]));
  assert.deepEqual(pts[3], [1700000240, 4]);
  assert.throws(() => parseCsv('1,2\nbad,3\n', 'x.csv'), /x.csv:2: cannot parse timestamp/);
  assert.throws(() => parseCsv('1700000000\n', 'y.csv'), /y.csv:1/);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'csv-'));
  try {
    await fs.writeFile(path.join(dir, 'a.csv'), '0,1\n60,2\n120,3\n240,5\n');
    await fs.writeFile(path.join(dir, 'b.csv'), '0,7\n30,8\n');
    await fs.writeFile(path.join(dir, 'ignored.txt'), 'x');
    const s = await loadCsv([dir]);
    assert.deepEqual(s.map((x) => x.name), ['a', 'b']);
    assert.equal(s[0].step, 60);
    assert.deepEqual(Array.from(s[0].values).map((v) => (Number.isNaN(v) ? null : v)), [1, 2, 3, null, 5]);
    await assert.rejects(loadCsv([path.join(dir, 'none')]), /cannot read/);
  } finally {
    await fs.rm(dir, { recursive: true });
  }
});
