import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';
import { redactUrlCredentials } from './util/redact.ts';

function capture() {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (s: string) => lines.push(s) });
  return { logger, lines, text: () => lines.join('') };
}

describe('createLogger redaction', () => {
  it('a retry warning about https://u:p4ss@host/x logs no p4ss, wherever the URL is', () => {
    const { logger, lines, text } = capture();
    const url = 'https://u:p4ss@host/x';
    logger.warn({ url, attempt: 2 }, `retrying GET ${url} after 503`);
    logger.warn({ request: { url, history: [{ redirected: `${url}?page=2` }] } }, 'retry');
    logger.error({ err: new Error(`connect ECONNREFUSED for ${url}`) }, 'request failed');
    logger.child({ base_url: url }).info('child binding');
    logger.info(`%s went away`, url);
    expect(lines).toHaveLength(5);
    expect(text()).not.toContain('p4ss');
    const first = JSON.parse(lines[0] as string);
    expect(first).toMatchObject({
      level: 40,
      url: 'https://u:***@host/x',
      attempt: 2,
      msg: 'retrying GET https://u:***@host/x after 503',
    });
    expect(JSON.parse(lines[1] as string).request.history[0].redirected).toBe('https://u:***@host/x?page=2');
    expect(JSON.parse(lines[2] as string).err.stack).toContain('https://u:***@host/x');
    expect(JSON.parse(lines[3] as string).base_url).toBe('https://u:***@host/x');
  });

  it('keeps the censoring of known secret fields', () => {
    const { logger, text } = capture();
    logger.info({ headers: { authorization: 'Bearer abc' }, conn: { api_key: 'k-123', password: 'pw' } }, 'x');
    expect(text()).not.toMatch(/Bearer abc|k-123|"pw"/);
  });
});

describe('redactUrlCredentials', () => {
  it.each([
    ['postgres://routiq:s3cret@db:5432/app', 'postgres://routiq:***@db:5432/app'],
    // An unencoded @ in the password: nothing after the user name survives up to the host.
    ['postgresql://u:pa@ss@db/app', 'postgresql://u:***@db/app'],
    ['see "https://u:p\\"w@h/x" and "http://v:q@h2"', 'see "https://u:***@h/x" and "http://v:***@h2"'],
    ['postgres://postgres@127.0.0.1:5432/test', 'postgres://postgres@127.0.0.1:5432/test'],
    ['mail a@b.c at https://h/x?u=a:b@c', 'mail a@b.c at https://h/x?u=a:b@c'],
  ])('%s', (input, want) => {
    expect(redactUrlCredentials(input)).toBe(want);
  });
});
