import { describe, expect, it } from 'vitest';
import { assertTransportAllowed, defaultAction, isLoopback, redactUrl } from './http.ts';
import { parseLinkNext } from './paginate.ts';

describe('transport policy', () => {
  it('allows https anywhere and plain http only to loopback unless the connection allows it', () => {
    expect(() => assertTransportAllowed(new URL('https://api.au1.cliniko.com/v1'), false)).not.toThrow();
    for (const u of ['http://127.0.0.1:3000', 'http://localhost/x', 'http://[::1]:80/']) {
      expect(isLoopback(new URL(u).hostname)).toBe(true);
      expect(() => assertTransportAllowed(new URL(u), false)).not.toThrow();
    }
    expect(() => assertTransportAllowed(new URL('http://chat.example.com'), false)).toThrow(
      /plain http to chat\.example\.com is refused/,
    );
    expect(() => assertTransportAllowed(new URL('http://chat.example.com'), true)).not.toThrow();
    expect(() => assertTransportAllowed(new URL('ftp://x.example'), true)).toThrow(/unsupported protocol/);
  });

  it('default classes by status', () => {
    expect([200, 204, 429, 500, 503, 408, 401, 403, 404, 422].map(defaultAction)).toEqual([
      'success',
      'success',
      'rate_limited',
      'transient',
      'transient',
      'transient',
      'auth',
      'auth',
      'permanent',
      'permanent',
    ]);
  });

  it('redacts credentials in query strings and parses RFC 8288 links', () => {
    expect(redactUrl('https://x/y?api_key=abc&page=2&token=t')).toBe('https://x/y?api_key=***&page=2&token=***');
    expect(parseLinkNext('<https://x/p?page=3>; rel="next", <https://x/p?page=9>; rel="last"')).toBe(
      'https://x/p?page=3',
    );
    expect(parseLinkNext('<https://x/p?page=1>; rel="prev"')).toBeUndefined();
  });
});

describe('TLS minimum', () => {
  it('refuses a TLS 1.2-only server by default and accepts it when the connection lowers the minimum', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const https = await import('node:https');
    const { HttpClient } = await import('./http.ts');
    const dir = mkdtempSync(path.join(tmpdir(), 'routiq-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        path.join(dir, 'k.pem'),
        '-out',
        path.join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(path.join(dir, 'c.pem'), 'utf8');
    const server = https.createServer(
      { key: readFileSync(path.join(dir, 'k.pem')), cert, maxVersion: 'TLSv1.2' },
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/`;
    const make = (minTlsVersion: 'TLSv1.2' | 'TLSv1.3') =>
      new HttpClient({
        minTlsVersion,
        allowInsecureHttp: false,
        rules: [],
        signals: {},
        retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 1 },
        deadline: Date.now() + 10_000,
        retryWindowMs: 10_000,
        limitersFor: () => [],
        ca: cert,
      });
    const req = { method: 'GET', url, headers: {}, searchParams: [], timeoutMs: 3000 };
    try {
      await expect(make('TLSv1.3').request(req)).rejects.toMatchObject({ failureClass: 'permanent', code: 'RQ3005' });
      expect((await make('TLSv1.2').request(req)).body).toEqual({ ok: true });
    } finally {
      server.close();
    }
  });
});
