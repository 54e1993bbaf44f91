import { describe, expect, it } from 'vitest';
import type { PaginationSpec } from '../spec/types.ts';
import type { HttpClient, HttpRequest, HttpResponse } from './http.ts';
import { extractRecords, type PaginateOptions, paginate, parseLinkNext } from './paginate.ts';

const BASE = 'http://api.test/items';

/** What the scripted API answers for one request: a JSON body and optional headers. */
type Answer = { body: unknown; headers?: Record<string, string> };

/**
 * An in-memory API behind the client interface paginate uses: it answers from the request's URL and query,
 * and records every request so a test can assert what was asked for.
 */
function api(answer: (q: URLSearchParams, url: URL) => Answer) {
  const sent: HttpRequest[] = [];
  const client = {
    async request(req: HttpRequest): Promise<HttpResponse> {
      sent.push(req);
      const url = new URL(req.url);
      for (const [k, v] of req.searchParams) url.searchParams.append(k, v);
      const a = answer(url.searchParams, url);
      const bodyText = JSON.stringify(a.body);
      return { status: 200, headers: a.headers ?? {}, bodyText, body: a.body, url: url.toString() };
    },
  } as unknown as HttpClient;
  /** The query of each request as sent, e.g. `page=2&per_page=10`. */
  const queries = () => sent.map((r) => new URLSearchParams(r.searchParams).toString());
  return { client, sent, queries };
}

const build: PaginateOptions['build'] = async (extra, followUrl) => ({
  method: 'GET',
  url: followUrl ?? BASE,
  headers: {},
  searchParams: [['sort', 'id'], ...extra],
  timeoutMs: 1000,
});

async function collect(o: Partial<PaginateOptions> & Pick<PaginateOptions, 'pagination' | 'client'>) {
  const pages: Array<{ number: number; records: unknown[] }> = [];
  for await (const p of paginate({ build, bindings: {}, ...o })) pages.push({ number: p.number, records: p.records });
  return pages;
}

const ids = (n: number, from = 1) => Array.from({ length: n }, (_, i) => ({ id: from + i }));

describe('page_number', () => {
  const list = ids(25);
  const a = () =>
    api((q) => {
      const page = Number(q.get('page'));
      const per = Number(q.get('per_page') ?? 10);
      return { body: { data: list.slice((page - 1) * per, page * per) } };
    });

  it('walks pages from `start` and stops at the first short page, without asking for an empty one', async () => {
    const s = a();
    const pages = await collect({
      pagination: { type: 'page_number', param: 'page', start: 1, size_param: 'per_page', size: 10 },
      client: s.client,
      records: 'data',
    });
    expect(pages.map((p) => [p.number, p.records.length])).toEqual([
      [1, 10],
      [2, 10],
      [3, 5],
    ]);
    expect(pages.flatMap((p) => p.records)).toEqual(list);
    expect(s.queries()).toEqual([
      'sort=id&page=1&per_page=10',
      'sort=id&page=2&per_page=10',
      'sort=id&page=3&per_page=10',
    ]);
  });

  it('ends on an empty page when the last page is full, and honours a custom param and start', async () => {
    const s = api((q) => ({ body: ids(5, Number(q.get('p')) * 5).slice(0, Number(q.get('p')) < 2 ? 5 : 0) }));
    const pages = await collect({
      pagination: { type: 'page_number', param: 'p', start: 0, size: 5 },
      client: s.client,
    });
    expect(pages.map((p) => p.records.length)).toEqual([5, 5, 0]);
    expect(s.queries()).toEqual(['sort=id&p=0', 'sort=id&p=1', 'sort=id&p=2']);
  });

  it('stops at max_pages even when pages stay full', async () => {
    const s = api((q) => ({ body: { data: ids(10, Number(q.get('page')) * 10) } }));
    const pages = await collect({
      pagination: { type: 'page_number', param: 'page', start: 1, size: 10, max_pages: 3 },
      client: s.client,
      records: 'data',
    });
    expect(pages).toHaveLength(3);
    expect(s.sent).toHaveLength(3);
  });
});

describe('offset', () => {
  it('advances the offset by the records received and stops at a short page', async () => {
    const list = ids(23);
    const s = api((q) => {
      const off = Number(q.get('skip'));
      return { body: { items: list.slice(off, off + Number(q.get('take'))) } };
    });
    const pages = await collect({
      pagination: { type: 'offset', offset_param: 'skip', limit_param: 'take', limit: 10 },
      client: s.client,
      records: 'items',
    });
    expect(pages.flatMap((p) => p.records)).toEqual(list);
    expect(s.queries()).toEqual(['sort=id&skip=0&take=10', 'sort=id&skip=10&take=10', 'sort=id&skip=20&take=10']);
  });
});

describe('cursor', () => {
  it('sends the token from the body back until it is null, empty or missing', async () => {
    for (const end of [null, '', undefined]) {
      const s = api((q) => {
        const at = Number(q.get('after') ?? 0);
        return { body: { results: ids(3, at + 1), meta: { next: at < 6 ? `${at + 3}` : end } } };
      });
      const pages = await collect({
        pagination: { type: 'cursor', token: 'meta.next', param: 'after', in: 'query' },
        client: s.client,
        records: 'results',
      });
      expect(pages.flatMap((p) => p.records)).toEqual(ids(9));
      // The token replaces the first page's parameters; the request's own params stay.
      expect(s.queries()).toEqual(['sort=id', 'sort=id&after=3', 'sort=id&after=6']);
    }
  });

  it('evaluates a JSONata token with the page bindings', async () => {
    const s = api((q) => ({ body: { rows: ids(2, Number(q.get('c') ?? 0) + 1), more: Number(q.get('c') ?? 0) < 4 } }));
    const pages = await collect({
      pagination: { type: 'cursor', token: 'more ? $string($page * 2) : null', param: 'c', in: 'query' },
      client: s.client,
      records: 'rows',
    });
    expect(s.queries()).toEqual(['sort=id', 'sort=id&c=2', 'sort=id&c=4']);
    expect(pages.flatMap((p) => p.records)).toEqual(ids(6));
  });
});

describe('next_link', () => {
  it('follows a body link, resolving a relative URL against the request URL, without re-sending page params', async () => {
    const s = api((_q, url) => {
      const p = Number(url.searchParams.get('page') ?? 1);
      return { body: { items: ids(2, p * 2 - 1), links: p < 3 ? { next: `/items?page=${p + 1}` } : {} } };
    });
    const pages = await collect({
      pagination: { type: 'next_link', from: 'body', path: 'links.next', cross_origin: 'refuse' },
      client: s.client,
      records: 'items',
    });
    expect(pages.flatMap((p) => p.records)).toEqual(ids(6));
    expect(s.sent.map((r) => r.url)).toEqual([BASE, 'http://api.test/items?page=2', 'http://api.test/items?page=3']);
    expect(s.sent.every((r) => r.searchParams.length === 1)).toBe(true);
  });

  it('defaults the body path to links.next', async () => {
    const s = api((_q, url) => ({
      body: { data: [{ id: url.pathname }], links: url.pathname === '/items' ? { next: 'http://api.test/two' } : {} },
    }));
    const pages = await collect({
      pagination: { type: 'next_link', from: 'body', cross_origin: 'refuse' },
      client: s.client,
      records: 'data',
    });
    expect(pages.flatMap((p) => p.records)).toEqual([{ id: '/items' }, { id: '/two' }]);
  });

  it('follows an RFC 8288 Link header', async () => {
    const s = api((_q, url) => {
      const p = Number(url.searchParams.get('page') ?? 1);
      const headers: Record<string, string> =
        p < 2 ? { link: '<http://api.test/items?page=9>; rel="last", <http://api.test/items?page=2>; rel="next"' } : {};
      return { body: ids(3, p * 3 - 2), headers };
    });
    const pages = await collect({
      pagination: { type: 'next_link', from: 'header', cross_origin: 'refuse' },
      client: s.client,
    });
    expect(pages.flatMap((p) => p.records)).toEqual(ids(6));
    expect(s.sent.map((r) => r.url)).toEqual([BASE, 'http://api.test/items?page=2']);
  });
});

describe('id_window', () => {
  const notes = ids(11, 100); // ids 100..110
  const windowed = () =>
    api((q) => {
      const before = q.get('before_id');
      const after = q.get('after_id');
      let page: Array<{ id: number }>;
      if (after) page = notes.filter((n) => n.id > Number(after)).slice(0, 5);
      else if (before) page = notes.filter((n) => n.id < Number(before)).slice(-4);
      else page = notes.slice(-4);
      return { body: { payload: page } };
    });
  const pagination: PaginationSpec = {
    type: 'id_window',
    id_field: 'id',
    before_param: 'before_id',
    before_page_size: 4,
    after_param: 'after_id',
    after_page_size: 5,
  };

  it('without a cursor: the newest page, then backwards by the smallest id until a short page', async () => {
    const s = windowed();
    const pages = await collect({ pagination, client: s.client, records: 'payload' });
    expect(s.queries()).toEqual(['sort=id', 'sort=id&before_id=107', 'sort=id&before_id=103']);
    expect(pages.flatMap((p) => p.records).map((r) => (r as { id: number }).id)).toEqual([
      107, 108, 109, 110, 103, 104, 105, 106, 100, 101, 102,
    ]);
  });

  it('with a cursor: forwards from it by the largest id until a short page', async () => {
    const s = windowed();
    const pages = await collect({ pagination, client: s.client, records: 'payload', cursor: 101 });
    expect(s.queries()).toEqual(['sort=id&after_id=101', 'sort=id&after_id=106']);
    expect(pages.flatMap((p) => p.records).map((r) => (r as { id: number }).id)).toEqual([
      102, 103, 104, 105, 106, 107, 108, 109, 110,
    ]);
  });

  it('a null cursor walks backwards like no cursor; records without numeric ids end the walk', async () => {
    const s = windowed();
    await collect({ pagination, client: s.client, records: 'payload', cursor: null });
    expect(s.queries()[0]).toBe('sort=id');
    const odd = api(() => ({ body: { payload: [{ id: 'x' }, { id: 'y' }, { id: 'z' }, { id: 'w' }] } }));
    const pages = await collect({ pagination, client: odd.client, records: 'payload' });
    expect(pages).toHaveLength(1);
  });
});

describe('stop conditions', () => {
  const endless = () => api((q) => ({ body: { data: ids(10, Number(q.get('page')) * 10), total: 35 } }));
  const pagination: PaginationSpec = {
    type: 'page_number',
    param: 'page',
    start: 1,
    size: 10,
    stop: { when: '$page * 10 >= $response.body.total' },
  };

  it('stop.when is evaluated after each page with $response, $records and $page', async () => {
    const s = endless();
    const pages = await collect({ pagination, client: s.client, records: 'data' });
    expect(pages.map((p) => p.number)).toEqual([1, 2, 3, 4]);
    const byRecords = endless();
    const few = await collect({
      pagination: { ...pagination, stop: { when: '$records[-1].id >= 29' } },
      client: byRecords.client,
      records: 'data',
    });
    expect(few.map((p) => p.number)).toEqual([1, 2]);
  });

  it('stop.when sees the spec bindings too', async () => {
    const s = endless();
    const pages = await collect({
      pagination: { ...pagination, stop: { when: '$page >= $config.pages' } },
      client: s.client,
      records: 'data',
      bindings: { config: { pages: 2 } },
    });
    expect(pages).toHaveLength(2);
  });

  it('stopAfter (e.g. a newest-first feed reaching the cursor) ends after the page it is true for', async () => {
    const s = endless();
    const seen: number[] = [];
    const pages = await collect({
      pagination: { type: 'page_number', param: 'page', start: 1, size: 10 },
      client: s.client,
      records: 'data',
      stopAfter: (records) => {
        seen.push(records.length);
        return (records as Array<{ id: number }>).some((r) => r.id === 25);
      },
    });
    expect(pages.map((p) => p.number)).toEqual([1, 2]);
    expect(seen).toEqual([10, 10]);
  });

  it('type none makes exactly one request', async () => {
    const s = endless();
    const pages = await collect({ pagination: { type: 'none' }, client: s.client, records: 'data' });
    expect(pages).toHaveLength(1);
    expect(s.sent).toHaveLength(1);
  });

  it('the same page twice in a row is a permanent RQ3007 failure (a paginator that does not advance)', async () => {
    const s = api(() => ({ body: { data: ids(10) } }));
    const pages: number[] = [];
    const err = await (async () => {
      for await (const p of paginate({
        pagination: { type: 'page_number', param: 'page', start: 1, size: 10 },
        client: s.client,
        records: 'data',
        build,
        bindings: {},
      }))
        pages.push(p.number);
    })().catch((e: unknown) => e);
    expect(pages).toEqual([1]);
    expect(err).toMatchObject({ name: 'HttpFailure', failureClass: 'permanent', code: 'RQ3007' });
    // Names the path, never the query (it can carry an api_key).
    expect((err as Error).message).toMatch(/same page .*\(http:\/\/api\.test\/items\)$/);
  });
});

describe('extractRecords', () => {
  it('reads the records path; a bare array body is the records; missing or null means none', async () => {
    expect(await extractRecords({ data: [{ id: 1 }, { id: 2 }] }, 'data')).toEqual([{ id: 1 }, { id: 2 }]);
    expect(await extractRecords([{ id: 1 }], undefined)).toEqual([{ id: 1 }]);
    expect(await extractRecords({ other: [] }, 'data')).toEqual([]);
    expect(await extractRecords(null, 'data')).toEqual([]);
    expect(await extractRecords(undefined, undefined)).toEqual([]);
  });

  it('wraps a single object (JSONata collapses one-element sequences) and supports JSONata paths', async () => {
    expect(await extractRecords({ data: { id: 1 } }, 'data')).toEqual([{ id: 1 }]);
    expect(
      await extractRecords(
        {
          data: [
            { id: 1, ok: true },
            { id: 2, ok: false },
          ],
        },
        'data[ok]',
      ),
    ).toEqual([{ id: 1, ok: true }]);
    expect(await extractRecords({ groups: [{ items: [{ id: 1 }] }, { items: [{ id: 2 }] }] }, 'groups.items')).toEqual([
      { id: 1 },
      { id: 2 },
    ]);
  });
});

describe('parseLinkNext', () => {
  it('finds rel=next among several links, quoted or not, in one header or several', () => {
    expect(parseLinkNext('<https://a.test/p?page=3>; rel="next", <https://a.test/p?page=9>; rel="last"')).toBe(
      'https://a.test/p?page=3',
    );
    expect(parseLinkNext('<https://a.test/1>; rel=prev, <https://a.test/3>; rel=next')).toBe('https://a.test/3');
    expect(parseLinkNext(['<https://a.test/9>; rel="last"', '<https://a.test/2>; rel="NEXT"'])).toBe(
      'https://a.test/2',
    );
  });

  it('is undefined without a next link', () => {
    expect(parseLinkNext(undefined)).toBeUndefined();
    expect(parseLinkNext('')).toBeUndefined();
    expect(parseLinkNext('<https://a.test/9>; rel="last"')).toBeUndefined();
  });
});
