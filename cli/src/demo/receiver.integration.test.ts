import http from 'node:http';
import net from 'node:net';
import type { RoutiqConfig } from '@routiq/runner';
import { createLogger } from '@routiq/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, testConfig } from '../../../test/helpers/engine.ts';
import { startWebhookReceiver } from './receiver.ts';

const SPEC = `spec_version: 1
name: pushy
version: 1.0.0
connection:
  properties:
    base_url: { type: string, format: uri }
  required: [base_url]
base_url: "{{ $config.base_url }}"
auth: { type: none }
streams:
  - name: items
    request: { path: /items }
    records: data
    pagination: { type: none }
    map:
      - target: appointments
        expression: |
          { "external_id": id, "status": "booked" }
webhooks:
  verify: { type: none }
  events:
    - name: item_pushed
      when: "event = 'item'"
      records: item
      map:
        - target: appointments
          expression: |
            { "external_id": id, "status": "booked", "notes": name }
`;

interface Answer {
  status: number;
  body: string;
}

/** One request; the answer, even when the server closes the connection while the body is still being sent. */
function send(url: string, path: string, body: string | Buffer, headers: http.OutgoingHttpHeaders = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const req = http.request(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A raw request line, for paths an HTTP client would refuse or normalise. */
function raw(url: string, lines: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), '127.0.0.1', () => s.end(lines));
    let text = '';
    s.on('data', (c) => {
      text += c.toString('utf8');
    });
    s.on('end', () => resolve(text));
    s.on('error', reject);
  });
}

describe('demo webhook receiver against untrusted input', () => {
  let t: TestDb;
  let config: RoutiqConfig;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const valid = (id: string) => JSON.stringify({ event: 'item', item: { id, name: `Item ${id}` } });
  const path = '/webhooks/org_rx/pushy';

  beforeAll(async () => {
    t = await openTestDb('embedded');
    config = testConfig(connectorsDir({ pushy: SPEC }), [
      org('org_rx', [{ connector: 'pushy', config: { base_url: 'http://127.0.0.1:9' } }]),
    ]);
    receiver = await startWebhookReceiver(
      t.db,
      config,
      createLogger('silent'),
      {},
      {
        limits: { maxBodyBytes: 64 * 1024, maxJsonDepth: 16 },
      },
    );
  }, 60_000);
  afterAll(async () => {
    await receiver?.close();
    await t?.drop();
  });

  it('accepts a valid payload', async () => {
    expect(await send(receiver.url, path, valid('a1')), JSON.stringify(receiver.stats())).toEqual({
      status: 200,
      body: '{"status":"accepted"}',
    });
  });

  it('malformed percent-encoding in the path is a 400 with its reason, and the server answers the next request', async () => {
    const answer = await raw(
      receiver.url,
      'POST /webhooks/%E0%A4%A/chatwoot HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('malformed percent-encoding');
    expect((await send(receiver.url, path, valid('a2'))).status).toBe(200);
  });

  it('a body over the limit is a 413, announced or streamed, and is not read to its end', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024, 'x');
    const announced = await send(receiver.url, path, big);
    expect(announced.status).toBe(413);
    expect(announced.body).toContain('larger than 65536 bytes');
    // Chunked: no Content-Length, so the limit is enforced while the body streams in.
    let sent = 0;
    let sentAtAnswer = 0;
    const streamed = await new Promise<Answer>((resolve, reject) => {
      const req = http.request(`${receiver.url}${path}`, {
        method: 'POST',
        headers: { 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      const pump = () => {
        // Keeps sending well past the limit; the server must answer without waiting for the end.
        while (sent < 64 * 1024 * 1024 && req.write(Buffer.alloc(16 * 1024, 'y'))) sent += 16 * 1024;
        if (sent < 64 * 1024 * 1024 && !req.destroyed) req.once('drain', pump);
      };
      pump();
      req.on('response', () => {
        sentAtAnswer = sent;
        req.destroy();
      });
    });
    expect(streamed.status).toBe(413);
    expect(sentAtAnswer).toBeLessThan(16 * 1024 * 1024);
    expect((await send(receiver.url, path, valid('a3'))).status).toBe(200);
  });

  it('JSON nested deeper than the limit is a 400 before it is parsed; strings do not count', async () => {
    const deep = `{"event":"item","item":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    const r = await send(receiver.url, path, deep);
    expect(r.status).toBe(400);
    expect(r.body).toContain('nests deeper than 16 levels');
    const brackets = JSON.stringify({ event: 'item', item: { id: 'b1', name: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' } });
    expect((await send(receiver.url, path, brackets)).status).toBe(200);
    expect(receiver.stats().rejected).toBeGreaterThanOrEqual(4);
  });

  it('ingested payloads reached the database; refused ones did not', async () => {
    const rows = await t.db.query<{ external_id: string }>(
      "select external_id from appointments where organization_id = 'org_rx' order by external_id",
    );
    expect(rows.map((r) => r.external_id)).toEqual(['a1', 'a2', 'a3', 'b1']);
  });
});
