import { FaultController } from '../common/faults.ts';
import { FixedWindowLimiter } from '../common/ratelimit.ts';
import { track } from '../common/registry.ts';
import {
  html,
  json,
  NGINX_502,
  NGINX_503,
  readJson,
  SimHost,
  type SimRequest,
  type SimResponse,
  text,
} from '../common/server.ts';
import { isoMillis, MINUTE, resolveNow } from '../common/time.ts';
import type { BaseSim, RateLimitOptions, SimOptions } from '../types.ts';
import {
  type ChatwootAccountConfig,
  ChatwootModel,
  type ChatwootMutationAction,
  type ChatwootMutationSummary,
  type CwAccount,
  type CwContact,
  type CwConversation,
  type Priority,
} from './model.ts';
import { ChatwootRenderer } from './render.ts';
import { type ChatwootWebhook, ChatwootWebhooks, type WebhookDelivery, type WebhookInput } from './webhooks.ts';

export interface ChatwootOptions extends SimOptions {
  accounts: ChatwootAccountConfig[];
  rateLimit?: {
    /** rack-attack `req/ip`: RACK_ATTACK_LIMIT (3000) per minute per IP. */
    perIp?: RateLimitOptions;
    /** `/contacts/search`: RATE_LIMIT_CONTACT_SEARCH (100) per minute per account. */
    contactSearch?: RateLimitOptions;
  };
  /** WEBHOOK_TIMEOUT. Default 5000 ms. */
  webhookTimeoutMs?: number;
  /**
   * Default false, as the reference notes say (a new message does not move conversations.updated_at unless
   * waiting_since / first_reply_created_at change). Set true to model `belongs_to :conversation, touch: true`,
   * which some Chatwoot versions' Message model declares. See README "Open questions".
   */
  touchConversationOnMessage?: boolean;
}

export interface ChatwootSnapshot {
  platform: 'chatwoot';
  now: string;
  accounts: Array<{
    id: number;
    name: string;
    /** Every contact in REST shape (with contact_inboxes), `_hidden: true` when /contacts cannot show it. */
    contacts: Array<Record<string, unknown> & { _hidden: boolean }>;
    /** Every live conversation in list-item shape, by display id. */
    conversations: Record<string, unknown>[];
    /** REST message shape (private notes and activity included), ascending, keyed by display id. */
    messages: Record<string, Record<string, unknown>[]>;
    /** Deleted without any webhook: only a re-list or a 404 reveals these. */
    deleted: { conversations: number[]; contacts: number[] };
  }>;
}

export interface ChatwootSim extends BaseSim<ChatwootSnapshot, ChatwootMutationSummary> {
  readonly model: ChatwootModel;
  webhooks: {
    subscribe(accountId: number, input: WebhookInput): ChatwootWebhook;
    list(accountId: number): ChatwootWebhook[];
    readonly deliveries: WebhookDelivery[];
    /** Waits for in-flight deliveries. */
    idle(): Promise<void>;
  };
  /** Snapshot without messages (cheap at large scales). */
  snapshot(opts?: { messages?: boolean }): ChatwootSnapshot;
  /**
   * Lets `ms` of platform time pass with nobody touching it: only the scheduled jobs run (snoozed conversations
   * whose time came are reopened). Returns what they changed.
   */
  advance(ms: number): ChatwootMutationAction[];
}

const PER_PAGE = 25;
const CONTACTS_PER_PAGE = 15;
const PRIORITY_RANK: Record<Priority, number> = { low: 1, medium: 2, high: 3, urgent: 4 };

const RAILS_404_HTML = `<!DOCTYPE html>
<html>
<head>
  <title>The page you were looking for doesn't exist (404)</title>
</head>
<body>
  <div class="dialog">
    <div>
      <h1>The page you were looking for doesn't exist.</h1>
      <p>You may have mistyped the address or the page may have moved.</p>
    </div>
  </div>
</body>
</html>
`;

function wantsJson(req: SimRequest): boolean {
  return String(req.headers.accept ?? '').includes('json') || req.path.endsWith('.json');
}

function intParam(v: string | null): number | null {
  if (v === null || v.trim() === '') return null;
  const n = Number.parseInt(v, 10);
  return Number.isNaN(n) ? null : n;
}

/** Kaminari: `page(params[:page])` coerces with to_i and treats anything < 1 as 1. */
function kaminariPage(v: string | null): number {
  const n = intParam(v);
  return n === null || n < 1 ? 1 : n;
}

function token(req: SimRequest): string | undefined {
  const h = req.headers.api_access_token ?? req.headers['api-access-token'];
  return Array.isArray(h) ? h[0] : h;
}

function cmpNullsLast<T>(a: T | null | undefined, b: T | null | undefined, cmp: (x: T, y: T) => number, desc: boolean) {
  const an = a === null || a === undefined || (a as unknown) === '';
  const bn = b === null || b === undefined || (b as unknown) === '';
  if (an && bn) return 0;
  if (an) return 1;
  if (bn) return -1;
  const r = cmp(a as T, b as T);
  return desc ? -r : r;
}

const strCmp = (a: string, b: string) => a.localeCompare(b, 'en');
const numCmp = (a: number, b: number) => a - b;

export async function startChatwoot(opts: ChatwootOptions): Promise<ChatwootSim> {
  if (!opts.accounts || opts.accounts.length === 0) throw new Error('startChatwoot needs at least one account');
  const model = new ChatwootModel({
    seed: opts.seed ?? 1,
    scale: opts.scale ?? 1,
    nowMs: resolveNow(opts.now),
    accounts: opts.accounts,
    ...(opts.touchConversationOnMessage !== undefined
      ? { touchConversationOnMessage: opts.touchConversationOnMessage }
      : {}),
  });
  let origin = '';
  const renderer = new ChatwootRenderer(model, () => origin);
  const webhooks = new ChatwootWebhooks(model, renderer, opts.webhookTimeoutMs ?? 5000);
  const ipLimit = new FixedWindowLimiter(
    opts.rateLimit?.perIp?.limit ?? 3000,
    opts.rateLimit?.perIp?.windowMs ?? MINUTE,
    opts.rateLimit?.perIp?.enabled ?? true,
  );
  const searchLimit = new FixedWindowLimiter(
    opts.rateLimit?.contactSearch?.limit ?? 100,
    opts.rateLimit?.contactSearch?.windowMs ?? MINUTE,
    opts.rateLimit?.contactSearch?.enabled ?? true,
  );

  const throttled = (): SimResponse => text(429, 'Retry later\n', 'text/plain');
  const notFound = (): SimResponse => json(404, { error: 'Resource could not be found' });

  // ---------------------------------------------------------------- conversations

  function filterConversations(account: CwAccount, q: URLSearchParams, userId: number) {
    let list = account.conversations.filter((c) => !c.deleted);
    const search = q.get('q');
    if (search) {
      const needle = search.toLowerCase();
      list = list.filter((c) => {
        const n = model.messageCount(c);
        for (let s = 0; s < n; s++) if (model.messageAt(c, s).content?.toLowerCase().includes(needle)) return true;
        return false;
      });
    } else {
      const status = q.get('status') ?? 'open';
      if (status !== 'all') list = list.filter((c) => c.status === status);
    }
    const inboxId = intParam(q.get('inbox_id'));
    if (inboxId !== null) list = list.filter((c) => c.inboxId === inboxId);
    const teamId = intParam(q.get('team_id'));
    if (teamId !== null) list = list.filter((c) => c.teamId === teamId);
    const labels = [...q.getAll('labels[]'), ...q.getAll('labels')].filter(Boolean);
    if (labels.length > 0) list = list.filter((c) => c.labels.some((l) => labels.includes(l)));
    const sourceId = q.get('source_id');
    if (sourceId)
      list = list.filter((c) =>
        account.contactsById
          .get(c.contactId)
          ?.inboxes.some((ci) => ci.id === c.contactInboxId && ci.sourceId === sourceId),
      );
    const ctype = q.get('conversation_type');
    if (ctype === 'unattended')
      list = list.filter((c) => c.firstReplyCreatedAtMs === null || c.waitingSinceMs !== null);
    else if (ctype === 'mention' || ctype === 'participating') list = [];
    const within = intParam(q.get('updated_within'));
    if (within !== null) {
      const cutoffUs = (model.clock.nowMs - within * 1000) * 1000;
      list = list.filter((c) => c.updatedAtUs > cutoffUs);
    }
    const meta = {
      mine_count: list.filter((c) => c.assigneeId === userId).length,
      assigned_count: list.filter((c) => c.assigneeId !== null).length,
      unassigned_count: list.filter((c) => c.assigneeId === null).length,
      all_count: list.length,
    };
    const at = q.get('assignee_type');
    if (at === 'me') list = list.filter((c) => c.assigneeId === userId);
    else if (at === 'unassigned') list = list.filter((c) => c.assigneeId === null);
    else if (at === 'assigned') list = list.filter((c) => c.assigneeId !== null);
    return { list, meta, unpaginated: within !== null };
  }

  function sortConversations(list: CwConversation[], sortBy: string | null): CwConversation[] {
    const key =
      (
        {
          latest: 'last_activity_at_desc',
          sort_on_created_at: 'created_at_asc',
          sort_on_priority: 'priority_desc',
          sort_on_waiting_since: 'waiting_since_asc',
        } as Record<string, string>
      )[sortBy ?? ''] ??
      sortBy ??
      'last_activity_at_desc';
    const byActivityDesc = (a: CwConversation, b: CwConversation) =>
      b.lastActivityAtMs - a.lastActivityAtMs || b.dbId - a.dbId;
    const cmp: Record<string, (a: CwConversation, b: CwConversation) => number> = {
      last_activity_at_desc: byActivityDesc,
      last_activity_at_asc: (a, b) => a.lastActivityAtMs - b.lastActivityAtMs || a.dbId - b.dbId,
      created_at_desc: (a, b) => b.createdAtMs - a.createdAtMs || b.dbId - a.dbId,
      created_at_asc: (a, b) => a.createdAtMs - b.createdAtMs || a.dbId - b.dbId,
      priority_desc: (a, b) =>
        cmpNullsLast(
          a.priority ? PRIORITY_RANK[a.priority] : null,
          b.priority ? PRIORITY_RANK[b.priority] : null,
          numCmp,
          true,
        ) || byActivityDesc(a, b),
      priority_asc: (a, b) =>
        cmpNullsLast(
          a.priority ? PRIORITY_RANK[a.priority] : null,
          b.priority ? PRIORITY_RANK[b.priority] : null,
          numCmp,
          false,
        ) || byActivityDesc(a, b),
      waiting_since_asc: (a, b) =>
        cmpNullsLast(a.waitingSinceMs, b.waitingSinceMs, numCmp, false) || byActivityDesc(a, b),
      waiting_since_desc: (a, b) =>
        cmpNullsLast(a.waitingSinceMs, b.waitingSinceMs, numCmp, true) || byActivityDesc(a, b),
    };
    return [...list].sort(cmp[key] ?? byActivityDesc);
  }

  function listConversations(account: CwAccount, req: SimRequest, userId: number): SimResponse {
    const { list, meta, unpaginated } = filterConversations(account, req.query, userId);
    let sorted = sortConversations(list, req.query.get('sort_by'));
    if (!unpaginated) {
      const page = kaminariPage(req.query.get('page'));
      sorted = sorted.slice((page - 1) * PER_PAGE, page * PER_PAGE);
    }
    return json(200, { data: { meta, payload: sorted.map((c) => renderer.conversation(c)) } });
  }

  function filterConversationsPost(account: CwAccount, req: SimRequest, userId: number): SimResponse {
    let body: Record<string, unknown>;
    try {
      body = readJson(req);
    } catch {
      return json(422, { error: 'Invalid JSON' });
    }
    const payload = Array.isArray(body.payload) ? (body.payload as Record<string, unknown>[]) : [];
    const live = account.conversations.filter((c) => !c.deleted);
    let result = null as Set<CwConversation> | null;
    let op = 'and';
    for (const f of payload) {
      const key = String(f.attribute_key ?? '');
      const operator = String(f.filter_operator ?? '');
      const values = Array.isArray(f.values)
        ? (f.values as unknown[]).map((v) =>
            typeof v === 'object' && v !== null && 'id' in v ? String((v as { id: unknown }).id) : String(v),
          )
        : [];
      let pred: (c: CwConversation) => boolean;
      const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
      if (key === 'created_at' || key === 'last_activity_at') {
        const v = values[0] ?? '';
        if (!/^\d{4}-\d{2}-\d{2}/.test(v))
          return json(422, { error: `Invalid value. The values provided for ${key} are invalid` });
        const d = v.slice(0, 10);
        const get = (c: CwConversation) => dayOf(key === 'created_at' ? c.createdAtMs : c.lastActivityAtMs);
        if (operator === 'is_greater_than') pred = (c) => get(c) > d;
        else if (operator === 'is_less_than') pred = (c) => get(c) < d;
        else if (operator === 'equal_to') pred = (c) => get(c) === d;
        else
          return json(422, {
            error: `Invalid operator. The allowed operators for ${key} are [is_greater_than,is_less_than].`,
          });
      } else if (['status', 'assignee_id', 'inbox_id', 'team_id', 'priority', 'labels', 'display_id'].includes(key)) {
        const get = (c: CwConversation): string[] =>
          key === 'status'
            ? [c.status]
            : key === 'assignee_id'
              ? [String(c.assigneeId)]
              : key === 'inbox_id'
                ? [String(c.inboxId)]
                : key === 'team_id'
                  ? [String(c.teamId)]
                  : key === 'priority'
                    ? [String(c.priority)]
                    : key === 'display_id'
                      ? [String(c.displayId)]
                      : c.labels;
        if (operator === 'equal_to') pred = (c) => get(c).some((x) => values.includes(x));
        else if (operator === 'not_equal_to') pred = (c) => !get(c).some((x) => values.includes(x));
        else if (operator === 'is_present') pred = (c) => get(c).some((x) => x !== 'null');
        else if (operator === 'is_not_present') pred = (c) => get(c).every((x) => x === 'null');
        else
          return json(422, {
            error: `Invalid operator. The allowed operators for ${key} are [equal_to,not_equal_to].`,
          });
      } else return json(422, { error: `Invalid attribute key - ${key}` });
      const test = pred;
      const matched = new Set(live.filter((c) => test(c)));
      if (result === null) result = matched;
      else if (op === 'or') result = new Set([...result, ...matched]);
      else result = new Set([...result].filter((c) => matched.has(c)));
      op = String(f.query_operator ?? 'and').toLowerCase();
    }
    const list = sortConversations([...(result ?? new Set(live))], 'last_activity_at_desc');
    const page = kaminariPage(req.query.get('page'));
    const meta = {
      mine_count: list.filter((c) => c.assigneeId === userId).length,
      assigned_count: list.filter((c) => c.assigneeId !== null).length,
      unassigned_count: list.filter((c) => c.assigneeId === null).length,
      all_count: list.length,
    };
    return json(200, {
      meta,
      payload: list.slice((page - 1) * PER_PAGE, page * PER_PAGE).map((c) => renderer.conversation(c)),
    });
  }

  /** MessageFinder, verbatim semantics: cursors are ids, ordering is created_at. */
  function listMessages(conv: CwConversation, q: URLSearchParams): SimResponse {
    let index = model.messageIndex(conv);
    if (q.has('filter_internal_messages')) {
      index = index.filter((e) => {
        const k = model.kindAt(conv, e.slot);
        return k !== 'activity' && k !== 'note';
      });
    }
    const before = intParam(q.get('before'));
    const after = intParam(q.get('after'));
    const asc = (a: { t: number; id: number }, b: { t: number; id: number }) => a.t - b.t || a.id - b.id;
    let picked: typeof index;
    if (after !== null && before !== null)
      picked = index
        .filter((e) => e.id >= after && e.id < before)
        .sort(asc)
        .slice(0, 1000);
    else if (before !== null)
      picked = index
        .filter((e) => e.id < before)
        .sort(asc)
        .slice(-20);
    else if (after !== null)
      picked = index
        .filter((e) => e.id > after)
        .sort(asc)
        .slice(0, 100);
    else picked = [...index].sort(asc).slice(-20);
    return json(200, {
      meta: renderer.messagesMeta(conv),
      payload: picked.map((e) => renderer.messageRest(model.messageAt(conv, e.slot))),
    });
  }

  // ---------------------------------------------------------------- contacts

  function sortContacts(list: CwContact[], sort: string | null): CwContact[] {
    if (!sort) return [...list].sort((a, b) => a.heapSeq - b.heapSeq);
    const desc = sort.startsWith('-');
    const key = desc ? sort.slice(1) : sort;
    const getters: Record<string, (c: CwContact) => string | number | null> = {
      name: (c) => c.name,
      email: (c) => c.email,
      phone_number: (c) => c.phone,
      last_activity_at: (c) => c.lastActivityAtMs,
      created_at: (c) => c.createdAtMs,
      company: (c) => (c.additionalAttributes.company_name as string | undefined) ?? null,
      city: (c) => (c.additionalAttributes.city as string | undefined) ?? null,
      country: (c) => (c.additionalAttributes.country as string | undefined) ?? null,
    };
    const get = getters[key];
    // Sift ignores unknown sort values: physical order then.
    if (!get) return [...list].sort((a, b) => a.heapSeq - b.heapSeq);
    return [...list].sort(
      (a, b) =>
        cmpNullsLast(
          get(a),
          get(b),
          (x, y) => (typeof x === 'number' && typeof y === 'number' ? x - y : strCmp(String(x), String(y))),
          desc,
        ) || a.id - b.id,
    );
  }

  function contactsPage(list: CwContact[], req: SimRequest): SimResponse {
    const sorted = sortContacts(list, req.query.get('sort'));
    const page = kaminariPage(req.query.get('page'));
    const withInboxes = req.query.get('include_contact_inboxes') !== 'false';
    const pageParam = req.query.get('page');
    return json(200, {
      meta: { count: sorted.length, current_page: pageParam ?? 1 },
      payload: sorted
        .slice((page - 1) * CONTACTS_PER_PAGE, page * CONTACTS_PER_PAGE)
        .map((c) => renderer.contact(c, withInboxes)),
    });
  }

  // ---------------------------------------------------------------- router

  function accountRoute(req: SimRequest, account: CwAccount, rest: string, userId: number): SimResponse | null {
    const m = req.method;
    if (rest === 'conversations' && m === 'GET') return listConversations(account, req, userId);
    if (rest === 'conversations/meta' && m === 'GET')
      return json(200, { meta: filterConversations(account, req.query, userId).meta });
    if (rest === 'conversations/filter' && m === 'POST') return filterConversationsPost(account, req, userId);
    let mm = /^conversations\/(\d+)$/.exec(rest);
    if (mm && m === 'GET') {
      const conv = model.conversationByDisplayId(account, Number(mm[1]));
      return conv ? json(200, renderer.conversation(conv)) : notFound();
    }
    if (mm && m === 'DELETE') {
      // ConversationsController#destroy: DeleteObjectJob, then `head :ok`; no webhook, no tombstone.
      const conv = model.conversationByDisplayId(account, Number(mm[1]));
      if (!conv) return notFound();
      conv.deleted = true;
      return { status: 200, body: '' };
    }
    mm = /^conversations\/(\d+)\/messages$/.exec(rest);
    if (mm && m === 'GET') {
      const conv = model.conversationByDisplayId(account, Number(mm[1]));
      return conv ? listMessages(conv, req.query) : notFound();
    }
    if (rest === 'contacts' && m === 'GET')
      return contactsPage(
        account.contacts.filter((c) => !c.deleted && ChatwootModel.isResolved(c)),
        req,
      );
    if (rest === 'contacts/search' && m === 'GET') {
      const q = req.query.get('q');
      if (!q) return json(422, { error: 'Specify search string with parameter q' });
      const needle = q.toLowerCase();
      const list = account.contacts.filter(
        (c) =>
          !c.deleted &&
          ChatwootModel.isResolved(c) &&
          [c.name, c.email, c.phone, c.identifier].some((f) => f?.toLowerCase().includes(needle)),
      );
      return contactsPage(list, req);
    }
    mm = /^contacts\/(\d+)$/.exec(rest);
    if (mm && m === 'GET') {
      const c = account.contactsById.get(Number(mm[1]));
      return c && !c.deleted ? json(200, { payload: renderer.contact(c, true) }) : notFound();
    }
    mm = /^contacts\/(\d+)\/conversations$/.exec(rest);
    if (mm && m === 'GET') {
      const c = account.contactsById.get(Number(mm[1]));
      if (!c || c.deleted) return notFound();
      const convs = account.conversations
        .filter((cv) => !cv.deleted && cv.contactId === c.id)
        .sort((a, b) => b.lastActivityAtMs - a.lastActivityAtMs)
        .slice(0, 20);
      return json(200, { payload: convs.map((cv) => renderer.conversation(cv)) });
    }
    if (rest === 'inboxes' && m === 'GET')
      return json(200, { payload: account.inboxes.map((i) => renderer.inboxJson(i)) });
    if (rest === 'agents' && m === 'GET')
      return json(
        200,
        account.agents.map((a) => renderer.agent(a)),
      );
    if (rest === 'webhooks' && m === 'GET')
      return json(200, { payload: { webhooks: webhooks.list(account.id).map((h) => webhooks.json(h)) } });
    if (rest === 'webhooks' && m === 'POST') {
      let body: Record<string, unknown>;
      try {
        body = readJson(req);
      } catch {
        return json(422, { message: 'Invalid JSON', attributes: [] });
      }
      const src = (typeof body.webhook === 'object' && body.webhook !== null ? body.webhook : body) as Record<
        string,
        unknown
      >;
      const res = webhooks.create(account.id, {
        url: src.url as string,
        subscriptions: src.subscriptions as string[],
        name: typeof src.name === 'string' ? src.name : null,
      });
      if (!res.ok) return json(422, { message: res.message, attributes: res.attributes });
      return json(200, { payload: { webhook: webhooks.json(res.webhook) } });
    }
    mm = /^webhooks\/(\d+)$/.exec(rest);
    if (mm && (m === 'PATCH' || m === 'PUT')) {
      let body: Record<string, unknown>;
      try {
        body = readJson(req);
      } catch {
        return json(422, { message: 'Invalid JSON', attributes: [] });
      }
      const src = (typeof body.webhook === 'object' && body.webhook !== null ? body.webhook : body) as Record<
        string,
        unknown
      >;
      const patch: Partial<WebhookInput> = {};
      if (typeof src.url === 'string') patch.url = src.url;
      if (Array.isArray(src.subscriptions)) patch.subscriptions = src.subscriptions as string[];
      if (typeof src.name === 'string') patch.name = src.name;
      const res = webhooks.update(account.id, Number(mm[1]), patch);
      if (!res) return notFound();
      if (!res.ok) return json(422, { message: res.message, attributes: res.attributes });
      return json(200, { payload: { webhook: webhooks.json(res.webhook) } });
    }
    if (mm && m === 'DELETE')
      return webhooks.remove(account.id, Number(mm[1])) ? { status: 200, body: '' } : notFound();
    return null;
  }

  function routeNotFound(req: SimRequest): SimResponse {
    // Rails' PublicExceptions answers in the request's format.
    return wantsJson(req) ? json(404, { status: 404, error: 'Not Found' }) : html(404, RAILS_404_HTML);
  }

  function handle(req: SimRequest): SimResponse {
    // rack-attack runs before routing and before authentication.
    if (!ipLimit.hit(`ip:${req.remoteAddress}`).allowed) return throttled();
    const searchMatch = /^\/api\/v1\/accounts\/(\d+)\/contacts\/search\/?$/.exec(req.path);
    if (searchMatch && !searchLimit.hit(`search:${searchMatch[1]}`).allowed) return throttled();

    const blob = /^\/rails\/active_storage\/(blobs|representations)\/redirect\/([^/]+)\/(.+)$/.exec(req.path);
    if (blob && req.method === 'GET')
      return {
        status: 302,
        headers: { location: `${origin}/rails/active_storage/disk/${blob[2]}/${blob[3]}` },
        body: '',
      };
    const disk = /^\/rails\/active_storage\/disk\/([^/]+)\/(.+)$/.exec(req.path);
    if (disk && req.method === 'GET') {
      const name = decodeURIComponent(disk[2] as string);
      const ext = name.split('.').pop()?.toLowerCase() ?? '';
      const types: Record<string, string> = {
        jpg: 'image/jpeg',
        jpeg: 'image/jpeg',
        png: 'image/png',
        ogg: 'audio/ogg',
        mp4: 'video/mp4',
        pdf: 'application/pdf',
      };
      return {
        status: 200,
        headers: { 'content-type': types[ext] ?? 'application/octet-stream' },
        body: Buffer.from(`sandbox attachment ${disk[1]} ${name}\n`),
      };
    }

    const isProfile = req.path === '/api/v1/profile';
    const acc = /^\/api\/v1\/accounts\/(\d+)\/(.+?)\/?$/.exec(req.path);
    if (!acc && !isProfile) return routeNotFound(req);

    const tok = token(req);
    const owner = tok ? model.tokens.get(tok) : undefined;
    if (!owner) return json(401, { error: 'Invalid Access Token' });
    if (isProfile) {
      const accounts = [...owner.accountIds].map((id) => model.accountsById.get(id) as CwAccount);
      const first = accounts[0]?.agents.find((a) => a.id === owner.userId);
      return json(200, {
        id: owner.userId,
        name: first?.name ?? 'Admin',
        email: first?.email ?? '',
        accounts: accounts.map((a) => ({ id: a.id, name: a.name, role: 'administrator', status: 'active' })),
        access_token: tok,
      });
    }
    const account = model.accountsById.get(Number(acc?.[1]));
    if (!account) return notFound();
    if (!owner.accountIds.has(account.id)) return json(401, { error: 'You are not authorized to access this account' });
    const out = accountRoute(req, account, acc?.[2] ?? '', owner.userId);
    return out ?? routeNotFound(req);
  }

  function group(req: SimRequest): string {
    const acc = /^\/api\/v1\/accounts\/\d+\/(.+?)\/?$/.exec(req.path);
    if (!acc) return req.path.startsWith('/rails/') ? 'attachments' : 'other';
    const rest = acc[1] as string;
    if (/^conversations\/\d+\/messages$/.test(rest)) return 'messages';
    if (/^conversations\/\d+$/.test(rest)) return 'conversation';
    if (rest === 'contacts/search') return 'contacts/search';
    if (/^contacts\/\d+\/conversations$/.test(rest)) return 'contact_conversations';
    if (/^contacts\/\d+$/.test(rest)) return 'contact';
    if (rest.startsWith('webhooks')) return 'webhooks';
    return rest.split('/')[0] === 'conversations'
      ? rest === 'conversations'
        ? 'conversations'
        : `conversations/${rest.split('/')[1]}`
      : (rest.split('/')[0] ?? 'other');
  }

  function snapshot(o: { messages?: boolean } = {}): ChatwootSnapshot {
    const withMessages = o.messages ?? true;
    return {
      platform: 'chatwoot',
      now: isoMillis(model.clock.nowMs),
      accounts: model.accounts.map((account) => {
        const live = account.conversations.filter((c) => !c.deleted);
        const messages: Record<string, Record<string, unknown>[]> = {};
        if (withMessages)
          for (const c of live) {
            const idx = model.messageIndex(c).sort((a, b) => a.t - b.t || a.id - b.id);
            messages[String(c.displayId)] = idx.map((e) => renderer.messageRest(model.messageAt(c, e.slot)));
          }
        return {
          id: account.id,
          name: account.name,
          contacts: account.contacts
            .filter((c) => !c.deleted)
            .sort((a, b) => a.id - b.id)
            .map((c) => ({ ...renderer.contact(c, true), _hidden: !ChatwootModel.isResolved(c) })),
          conversations: live.map((c) => renderer.conversation(c)),
          messages,
          deleted: {
            conversations: account.conversations.filter((c) => c.deleted).map((c) => c.displayId),
            contacts: account.contacts.filter((c) => c.deleted).map((c) => c.id),
          },
        };
      }),
    };
  }

  const faults = new FaultController(opts.faults);
  const host = new SimHost(
    {
      handle,
      group,
      fault5xx: (v) =>
        v === 0
          ? json(500, { status: 500, error: 'Internal Server Error' })
          : v === 1
            ? html(502, NGINX_502)
            : html(503, NGINX_503),
      fault429: throttled,
      snapshot: (req) => snapshot({ messages: req.query.get('messages') !== 'false' }),
      mutate: (steps) => model.mutate(steps),
      control: (req, sub) => {
        if (sub === 'advance' && req.method === 'POST') {
          const body = readJson(req);
          const ms = Number(req.query.get('ms') ?? body.ms ?? 0);
          if (!Number.isFinite(ms) || ms <= 0) return json(422, { error: 'ms must be a positive number' });
          const actions = model.advance(ms);
          return json(200, { now: isoMillis(model.clock.nowMs), actions });
        }
        if (sub === 'webhooks/deliveries' && req.method === 'GET') return json(200, webhooks.deliveries);
        return undefined;
      },
    },
    faults,
  );
  origin = await host.listen(opts.port ?? 0);

  return track<ChatwootSim>({
    url: origin,
    origin,
    model,
    close: () => host.close(),
    get stats() {
      return host.stats;
    },
    resetStats: () => host.resetStats(),
    faults,
    mutate: (steps = 1) => model.mutate(steps),
    advance: (ms) => model.advance(ms),
    snapshot,
    now: () => model.clock.nowMs,
    webhooks: {
      subscribe: (accountId, input) => webhooks.subscribe(accountId, input),
      list: (accountId) => webhooks.list(accountId),
      get deliveries() {
        return webhooks.deliveries;
      },
      idle: () => webhooks.idle(),
    },
  });
}
