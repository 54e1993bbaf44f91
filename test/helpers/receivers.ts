import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';

/**
 * Local stand-ins for alert channels in tests: an HTTP receiver for Slack incoming webhooks (records each JSON
 * body, answers `ok` as Slack does) and a minimal SMTP sink (RFC 5321 commands a client such as nodemailer uses;
 * no TLS, no auth) that records each message. Both notify waiters when something arrives.
 */
export interface Receiver<T> {
  url: string;
  received: T[];
  /** Resolves once at least `n` items have arrived (or rejects after `ms`). */
  waitFor(n: number, ms?: number): Promise<T[]>;
  close(): Promise<void>;
}

function waiters<T>(received: T[]) {
  const pending: Array<{ n: number; resolve: (v: T[]) => void }> = [];
  return {
    push(item: T) {
      received.push(item);
      for (const w of [...pending])
        if (received.length >= w.n) {
          pending.splice(pending.indexOf(w), 1);
          w.resolve(received);
        }
    },
    waitFor(n: number, ms = 60_000): Promise<T[]> {
      if (received.length >= n) return Promise.resolve(received);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${n} item(s), got ${received.length}`)), ms);
        pending.push({
          n,
          resolve: (v) => {
            clearTimeout(t);
            resolve(v);
          },
        });
      });
    },
  };
}

export async function startSlackReceiver(): Promise<Receiver<{ text: string }>> {
  const received: Array<{ text: string }> = [];
  const w = waiters(received);
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      try {
        w.push(JSON.parse(body) as { text: string });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } catch {
        res.writeHead(400).end('invalid_payload');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/services/T000/B000/XXXX`,
    received,
    waitFor: w.waitFor,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

export interface Mail {
  from: string;
  to: string[];
  subject: string;
  data: string;
}

export async function startSmtpSink(): Promise<Receiver<Mail>> {
  const received: Mail[] = [];
  const w = waiters(received);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.setEncoding('utf8');
    let buf = '';
    let inData = false;
    let mail: Mail = { from: '', to: [], subject: '', data: '' };
    const say = (line: string) => sock.write(`${line}\r\n`);
    say('220 sink ESMTP');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            mail.subject = /^Subject: (.*)$/im.exec(mail.data)?.[1] ?? '';
            w.push(mail);
            mail = { from: '', to: [], subject: '', data: '' };
            say('250 OK queued');
          } else mail.data += `${line.startsWith('..') ? line.slice(1) : line}\n`;
          continue;
        }
        const cmd = line.slice(0, 4).toUpperCase();
        if (cmd === 'EHLO') say('250-sink\r\n250 8BITMIME');
        else if (cmd === 'HELO' || cmd === 'RSET' || cmd === 'NOOP') say('250 OK');
        else if (cmd === 'MAIL') {
          mail.from = /<([^>]*)>/.exec(line)?.[1] ?? '';
          say('250 OK');
        } else if (cmd === 'RCPT') {
          mail.to.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          say('250 OK');
        } else if (cmd === 'DATA') {
          inData = true;
          say('354 End data with <CR><LF>.<CR><LF>');
        } else if (cmd === 'QUIT') {
          say('221 Bye');
          sock.end();
        } else say('502 Command not implemented');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    waitFor: w.waitFor,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
