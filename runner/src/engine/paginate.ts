import { hash } from 'node:crypto';
import type { PaginationSpec } from '../spec/types.ts';
import { type Bindings, evaluate } from './expr.ts';
import { type HttpClient, HttpFailure, type HttpRequest, type HttpResponse } from './http.ts';
import { hashRecordOnce } from './record-hash.ts';

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
  build(
    extra: Array<[string, string]>,
    followUrl: string | undefined,
    page: number,
    body?: Array<[string, unknown]>,
  ): Promise<HttpRequest>;
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
  /** Values the next request carries in its JSON body (a search API's cursor). */
  let bodyExtra: Array<[string, unknown]> = [];
  const loop = new LoopGuard();
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
    const request = await o.build(extra, follow, n, bodyExtra);
    const response = await o.client.request(request);
    if (response.bodyText.length > 2) loop.check('page', fingerprint(response.bodyText), request.url, response.status);
    const records = await extractRecords(response.body, o.records, o.dataBindings);
    loop.records(records, request.url, response.status);
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
        loop.check('cursor', String(token), request.url, response.status);
        if (p.in === 'body') bodyExtra = [[p.param, token]];
        else extra = [[p.param, String(token)]];
        break;
      }
      case 'next_link': {
        let next: unknown;
        if (p.from === 'header') next = parseLinkNext(response.headers.link);
        else next = await evaluate(p.path ?? 'links.next', response.body, b);
        if (typeof next !== 'string' || !next) return;
        follow = new URL(next, request.url).toString();
        loop.check('link', follow, request.url, response.status);
        extra = [];
        break;
      }
      case 'id_window': {
        const ids = records.map((r) => Number((r as Record<string, unknown>)[idField])).filter(Number.isFinite);
        if (!ids.length) return;
        if (forward) {
          if (records.length < p.after_page_size) return;
          extra = [[p.after_param, String(loop.anchor(Math.max(...ids), 1, request.url, response.status))]];
        } else {
          if (records.length < p.before_page_size) return;
          extra = [[p.before_param, String(loop.anchor(Math.min(...ids), -1, request.url, response.status))]];
        }
        break;
      }
    }
  }
}

// crypto.hash: the one-shot form, half the cost of a createHash object per record (same digest).
const fingerprint = (s: string) => hash('sha1', s, 'base64url').slice(0, 22);

/**
 * The record's source hash, which the mapper then reuses (record-hash.ts): one serialization per record. undefined
 * for a record nested too deeply to serialize (the stack overflows): it counts as new, and mapping dead-letters it.
 */
function recordFingerprint(r: unknown): string | undefined {
  try {
    return hashRecordOnce(r);
  } catch {
    return undefined;
  }
}

/** Pages whose records were all seen earlier in the pass, in a row, before the pass counts as a loop. */
const STALE_PAGES = 3;

/**
 * Loops within one pass of a stream or partition: a page body, cursor token or link that comes back (A, B, A …
 * as well as A, A), an id window that does not move, or pages that only repeat records already seen. A hostile
 * or broken API otherwise runs until max_pages.
 */
export class LoopGuard {
  private readonly seen = new Set<string>();
  private readonly recordsSeen = new Set<string>();
  private stale = 0;
  private lastAnchor: number | undefined;

  check(kind: 'page' | 'cursor' | 'link', value: string, url: string, status: number): void {
    const k = `${kind}:${value}`;
    if (this.seen.has(k)) throw loopError(`the same ${kind === 'page' ? 'page' : kind} came back`, url, status);
    this.seen.add(k);
  }

  records(records: unknown[], url: string, status: number): void {
    if (!records.length) return;
    let fresh = 0;
    for (const r of records) {
      const f = recordFingerprint(r);
      if (f === undefined || !this.recordsSeen.has(f)) {
        fresh++;
        if (f !== undefined) this.recordsSeen.add(f);
      }
    }
    this.stale = fresh ? 0 : this.stale + 1;
    if (this.stale >= STALE_PAGES)
      throw loopError(`${STALE_PAGES} pages in a row held only records seen before`, url, status);
  }

  /** An id window must move in its direction on every page. */
  anchor(next: number, direction: 1 | -1, url: string, status: number): number {
    if (this.lastAnchor !== undefined && (next - this.lastAnchor) * direction <= 0)
      throw loopError(`the id window did not move (${this.lastAnchor} → ${next})`, url, status);
    this.lastAnchor = next;
    return next;
  }
}

function loopError(why: string, url: string, status: number): HttpFailure {
  // Query strings can carry credentials (api_key in query): name the path only.
  const u = URL.canParse(url) ? new URL(url) : undefined;
  const where = u ? `${u.origin}${u.pathname}` : 'request';
  return new HttpFailure('permanent', `pagination loop: ${why} (${where})`, status, undefined, 'RQ3007');
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
