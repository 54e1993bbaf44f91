import { createHash } from 'node:crypto';
import type { PaginationSpec } from '../spec/types.ts';
import { type Bindings, evaluate } from './expr.ts';
import { type HttpClient, HttpFailure, type HttpRequest, type HttpResponse } from './http.ts';

export interface Page {
  number: number;
  records: unknown[];
  response: HttpResponse;
  request: HttpRequest;
}

export interface PaginateOptions {
  pagination: PaginationSpec;
  client: HttpClient;
  /** Build the request for page `page` (1-based): extra params from the paginator, or a full URL to follow. */
  build(extra: Array<[string, string]>, followUrl: string | undefined, page: number): Promise<HttpRequest>;
  records?: string | undefined;
  /** Bindings of the `records` path (area `data`). */
  dataBindings?: Bindings;
  /** id_window: the stream cursor (walk forwards from it) or undefined (newest page, then backwards). */
  cursor?: unknown;
  /** Return true to stop after this page (e.g. newest-first feed reached the cursor). */
  stopAfter?: (records: unknown[]) => boolean;
  bindings: Bindings;
}

/** Pages of a stream or partition, one at a time: nothing is buffered beyond the current page. */
export async function* paginate(o: PaginateOptions): AsyncGenerator<Page> {
  const p = o.pagination;
  // `none` has no max_pages (one request, one page).
  const maxPages = p.type === 'none' ? 1 : (p.max_pages ?? 100_000);
  let extra: Array<[string, string]> = [];
  let follow: string | undefined;
  let prevHash: string | undefined;
  let pageNo = 0;
  let offset = 0;
  const idField = p.type === 'id_window' ? p.id_field : 'id';
  const forward = p.type === 'id_window' && o.cursor !== undefined && o.cursor !== null;

  if (p.type === 'page_number') {
    pageNo = p.start;
    extra = [[p.param, String(pageNo)]];
    if (p.size_param) extra.push([p.size_param, String(p.size)]);
  } else if (p.type === 'offset') {
    extra = [
      [p.offset_param, '0'],
      [p.limit_param, String(p.limit)],
    ];
  } else if (p.type === 'id_window' && forward) {
    extra = [[p.after_param, String(o.cursor)]];
  }

  for (let n = 1; n <= maxPages; n++) {
    const request = await o.build(extra, follow, n);
    const response = await o.client.request(request);
    const hash = createHash('sha1').update(response.bodyText).digest('hex');
    if (prevHash === hash && response.bodyText.length > 2) {
      throw new HttpFailure(
        'permanent',
        `pagination returned the same page twice (${request.url})`,
        response.status,
        undefined,
        'RQ3007',
      );
    }
    prevHash = hash;
    const records = await extractRecords(response.body, o.records, o.dataBindings);
    yield { number: n, records, response, request };
    if (!records.length) return;
    if (o.stopAfter?.(records)) return;
    const b = {
      ...o.bindings,
      response: { status: response.status, headers: response.headers, body: response.body },
      records,
      page: n,
    };
    if (p.type !== 'none' && p.stop?.when && (await evaluate(p.stop.when, response.body, b))) return;

    switch (p.type) {
      case 'none':
        return;
      case 'page_number':
        if (records.length < p.size) return;
        pageNo++;
        extra = extra.map(([k, v]) => (k === p.param ? [k, String(pageNo)] : [k, v]));
        break;
      case 'offset':
        if (records.length < p.limit) return;
        offset += records.length;
        extra = extra.map(([k, v]) => (k === p.offset_param ? [k, String(offset)] : [k, v]));
        break;
      case 'cursor': {
        const token = await evaluate(p.token, response.body, b);
        if (token === undefined || token === null || token === '') return;
        extra = [[p.param, String(token)]];
        break;
      }
      case 'next_link': {
        let next: unknown;
        if (p.from === 'header') next = parseLinkNext(response.headers.link);
        else next = await evaluate(p.path ?? 'links.next', response.body, b);
        if (typeof next !== 'string' || !next) return;
        follow = new URL(next, request.url).toString();
        extra = [];
        break;
      }
      case 'id_window': {
        const ids = records.map((r) => Number((r as Record<string, unknown>)[idField])).filter(Number.isFinite);
        if (!ids.length) return;
        if (forward) {
          if (records.length < p.after_page_size) return;
          extra = [[p.after_param, String(Math.max(...ids))]];
        } else {
          if (records.length < p.before_page_size) return;
          extra = [[p.before_param, String(Math.min(...ids))]];
        }
        break;
      }
    }
  }
}

export async function extractRecords(body: unknown, path: string | undefined, b?: Bindings): Promise<unknown[]> {
  if (body === undefined || body === null) return [];
  const v = path ? await evaluate(path, body, b) : body;
  if (v === undefined || v === null) return [];
  // JSONata collapses a one-element sequence to its element.
  return Array.isArray(v) ? v : [v];
}

/** RFC 8288: `<url>; rel="next", <url>; rel="last"`. */
export function parseLinkNext(header: string | string[] | undefined): string | undefined {
  const h = Array.isArray(header) ? header.join(',') : header;
  if (!h) return undefined;
  for (const part of h.split(',')) {
    const m = /<([^>]+)>\s*;(.*)/.exec(part.trim());
    if (m && /rel="?next"?/i.test(m[2] ?? '')) return m[1];
  }
  return undefined;
}
