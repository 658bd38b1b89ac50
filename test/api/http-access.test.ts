// admin.http's access rules and limits, on listeners started here (port 0, closed in each test):
// who may read the topology (/, /status, /metrics), the Host check against DNS rebinding on a
// loopback bind, the body limit (413 without reading on), and the cut-off of slow clients and
// of connections past the cap. Token files live in a per-run temp directory removed in after().
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '../../src/log';
import { startHttpListener, type HttpListener } from '../../src/api/http';
import { daemonStatus } from '../lib/status';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `xtha${process.pid}-`));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const WRITE = 'write-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';
fs.writeFileSync(path.join(tmp, 'write'), `${WRITE}\n`, { mode: 0o600 });
fs.writeFileSync(path.join(tmp, 'read'), `${READ}\n`, { mode: 0o600 });

let changes = 0;
const handlers = {
  status: async () =>
    daemonStatus(
      {
        kind: 'xdp',
        services: [],
        detail: {
          interface: 'eth0',
          mode: 'native',
          programId: 1,
          pinDir: '/sys/fs/bpf/x',
          flowCounts: { entries: 0, countedAt: new Date(0).toISOString(), walkMs: 0 },
        },
      },
      { instance: 'x' },
    ),
  metrics: async () => '# HELP a b\n# TYPE a gauge\na 1\n',
  drain: async () => {
    changes++;
    return { message: 'ok' };
  },
  undrain: async () => ({ message: 'ok' }),
  weight: async () => ({ message: 'ok' }),
};

/** Options as a variable: the fields are the listener's, checked by its own type where it is called. */
async function listen(o: Record<string, unknown>): Promise<HttpListener> {
  const opts = { host: '127.0.0.1', port: 0, ...o };
  return startHttpListener(opts as Parameters<typeof startHttpListener>[0], handlers, silentLogger());
}

/** A GET (or other request) to 127.0.0.1:port with exactly these headers. */
function request(
  port: number,
  p: string,
  headers: Record<string, string>,
  method = 'GET',
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, headers, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        b += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

test('on a bind other hosts can reach, /, /status and /metrics need the read or the write token', async () => {
  const l = await listen({
    host: '0.0.0.0',
    readTokenFile: path.join(tmp, 'read'),
    tokenFile: path.join(tmp, 'write'),
  });
  try {
    for (const p of ['/', '/status', '/metrics']) {
      const anon = await request(l.port, p, { host: 'director1.example.net' });
      assert.equal(anon.status, 401, `${p} without a token: ${anon.body}`);
      assert.doesNotMatch(anon.body, /"instance"|# TYPE/, 'nothing of the topology in the refusal');
      assert.equal((await request(l.port, p, { host: 'x', ...bearer('wrong-token-wrong-token') })).status, 401);
      assert.equal((await request(l.port, p, { host: 'x', ...bearer(READ) })).status, 200, `${p} with the read token`);
      assert.equal(
        (await request(l.port, p, { host: 'x', ...bearer(WRITE) })).status,
        200,
        `${p} with the write token`,
      );
    }
    // A browser: HTTP Basic with the token as the password.
    assert.equal(
      (
        await request(l.port, '/', {
          host: 'x',
          authorization: `Basic ${Buffer.from(`any:${READ}`).toString('base64')}`,
        })
      ).status,
      200,
    );
    // The read token does not change anything.
    const post = await request(
      l.port,
      '/drain',
      { host: 'x', ...bearer(READ), 'content-type': 'application/json' },
      'POST',
      '{"backend":"b"}',
    );
    assert.equal(post.status, 401);
    assert.equal(changes, 0);
  } finally {
    await l.close();
  }
});

test('a listener other hosts can reach is refused without any token', async () => {
  await assert.rejects(
    listen({ host: '0.0.0.0' }),
    /admin\.http 0\.0\.0\.0:0: a listener other hosts can reach needs a token: set admin\.http_read_token_file/,
  );
});

test('on loopback, reads stay open without a read token and need it once one is set', async () => {
  const open = await listen({});
  const closed = await listen({ readTokenFile: path.join(tmp, 'read') });
  try {
    assert.equal((await request(open.port, '/status', { host: `127.0.0.1:${open.port}` })).status, 200);
    assert.equal((await request(closed.port, '/status', { host: `127.0.0.1:${closed.port}` })).status, 401);
    assert.equal(
      (await request(closed.port, '/metrics', { host: `127.0.0.1:${closed.port}`, ...bearer(READ) })).status,
      200,
    );
  } finally {
    await open.close();
    await closed.close();
  }
});

test('on loopback, a Host that is not the listener (DNS rebinding) gets 421; its address, localhost and configured names are served', async () => {
  const l = await listen({ hostNames: ['director1.example.net'] });
  try {
    const rebound = await request(l.port, '/status', { host: `attacker.example:${l.port}` });
    assert.equal(rebound.status, 421, rebound.body);
    assert.match(rebound.body, /admin\.http_host_names/);
    assert.doesNotMatch(rebound.body, /"instance"/);
    for (const h of [
      `127.0.0.1:${l.port}`,
      '127.0.0.1',
      `localhost:${l.port}`,
      `LOCALHOST:${l.port}`,
      `director1.example.net:${l.port}`,
    ]) {
      assert.equal((await request(l.port, '/status', { host: h })).status, 200, `Host: ${h}`);
    }
  } finally {
    await l.close();
  }
});

test('a body over 4 KiB is answered 413 at once, without reading the rest', async () => {
  const l = await listen({ tokenFile: path.join(tmp, 'write') });
  try {
    const s = net.connect(l.port, '127.0.0.1');
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
    });
    s.on('error', () => {
      /* the server closes after answering */
    });
    // Declares 100 MB and sends only the start: an answer can only come without reading on.
    s.write(
      `POST /drain HTTP/1.1\r\nHost: 127.0.0.1:${l.port}\r\nAuthorization: Bearer ${WRITE}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{"backend":"b",`,
    );
    for (let i = 0; i < 50 && !got.includes('\r\n\r\n'); i++) await new Promise((r) => setTimeout(r, 20));
    s.destroy();
    assert.match(got, /^HTTP\/1\.1 413 /, `answer: ${JSON.stringify(got.slice(0, 80))}`);
    // Sent in pieces without a length (chunked): cut at the limit too.
    const big = await request(
      l.port,
      '/drain',
      { host: `127.0.0.1:${l.port}`, ...bearer(WRITE), 'transfer-encoding': 'chunked' },
      'POST',
      'x'.repeat(5000),
    ).catch((e: Error) => ({ status: 0, body: e.message }));
    assert.equal(big.status, 413, big.body);
    assert.equal(changes, 0);
  } finally {
    await l.close();
  }
});

test('a client that never finishes its headers is cut off, and connections past the cap are closed at once', async () => {
  const l = await listen({ limits: { headersTimeoutMs: 300, requestTimeoutMs: 600, maxConnections: 2 } });
  const sockets: net.Socket[] = [];
  // resume(): a socket nobody reads never sees the server's FIN.
  const closedAfter = (s: net.Socket, t0: number) =>
    new Promise<number>((r) => {
      s.resume();
      s.once('close', () => r(Date.now() - t0));
    });
  try {
    const t0 = Date.now();
    const slow = net.connect(l.port, '127.0.0.1');
    sockets.push(slow);
    slow.on('error', () => {
      /* cut off */
    });
    const slowClosed = closedAfter(slow, t0);
    slow.write(`GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n`); // never the blank line
    const second = net.connect(l.port, '127.0.0.1');
    sockets.push(second);
    second.on('error', () => {
      /* closed */
    });
    await new Promise((r) => second.once('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    const third = net.connect(l.port, '127.0.0.1');
    sockets.push(third);
    third.on('error', () => {
      /* closed */
    });
    const thirdClosed = closedAfter(third, Date.now());
    const thirdMs = await Promise.race([thirdClosed, new Promise<number>((r) => setTimeout(() => r(Infinity), 1000))]);
    assert.ok(thirdMs < 250, `the connection past maxConnections is closed at once (after ${thirdMs} ms)`);
    const ms = await Promise.race([slowClosed, new Promise<number>((r) => setTimeout(() => r(Infinity), 5000))]);
    assert.ok(
      ms >= 250 && ms < 3000,
      `the slow client was cut off after ${ms} ms (headers timeout 300 ms, checked every second at most)`,
    );
  } finally {
    for (const s of sockets) s.destroy();
    await l.close();
  }
});

test("the daemon's limits are finite: headers 10 s, request 30 s, 64 connections, 4 KiB bodies", async () => {
  const { HTTP_LIMITS } = await import('../../src/api/http');
  assert.deepEqual(HTTP_LIMITS, {
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    keepAliveTimeoutMs: 5_000,
    maxConnections: 64,
    maxBodyBytes: 4096,
  });
});
