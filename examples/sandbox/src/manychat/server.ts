import { FaultController } from '../common/faults.ts';
import { rngFor } from '../common/prng.ts';
import { FixedWindowLimiter } from '../common/ratelimit.ts';
import { track } from '../common/registry.ts';
import { html, json, NGINX_502, NGINX_503, SimHost, type SimRequest, type SimResponse } from '../common/server.ts';
import { HOUR, isoWithOffset, resolveNow, SECOND } from '../common/time.ts';
import type { BaseSim, SimOptions } from '../types.ts';
import {
  ManyChatModel,
  type ManyChatMutationSummary,
  type ManyChatPageConfig,
  type McField,
  type McFieldType,
  type McPage,
  type McSubscriber,
} from './model.ts';

/**
 * Per-operation requests per second, per page key. Swagger values (newer than the help article):
 * findBySystemField 50, sendFlow 20, sendContent 25, page reads 100, getFlows 10, everything else 10.
 */
export const MANYCHAT_RPS: Record<string, number> = {
  '/fb/page/getInfo': 100,
  '/fb/page/getTags': 100,
  '/fb/page/getGrowthTools': 100,
  '/fb/page/getWidgets': 100,
  '/fb/page/getCustomFields': 100,
  '/fb/page/getOtnTopics': 100,
  '/fb/page/getBotFields': 100,
  '/fb/page/getFlows': 10,
  '/fb/subscriber/findBySystemField': 50,
  '/fb/sending/sendContent': 25,
  '/fb/sending/sendContentByUserRef': 25,
  '/fb/sending/sendFlow': 20,
};
const DEFAULT_RPS = 10;

export interface ManyChatOptions extends SimOptions {
  pages: ManyChatPageConfig[];
  rateLimit?: {
    enabled?: boolean;
    /** Window length; default 1000 ms (the limits are per second). */
    windowMs?: number;
    /** Overrides per operation path, e.g. { '/fb/subscriber/getInfo': 2 }. */
    limits?: Record<string, number>;
    /** sendFlow cap per subscriber per hour. Default 100. */
    sendFlowPerSubscriberPerHour?: number;
  };
  /** External Request timeout (ManyChat waits 10 s). */
  externalRequestTimeoutMs?: number;
}

export type ExternalTemplate = 'full_contact' | 'custom';

export interface ExternalRequestInput {
  pageId: string;
  subscriberId: string;
  url: string;
  /** `full_contact`: the body is the Full Contact Data JSON. `custom`: `bodyTemplate` with {{variables}}. */
  template?: ExternalTemplate;
  /** Only for `custom`. Default: `{"subscriber_id":"{{subscriber_id}}","text":"{{last_input_text}}","phone":"{{phone}}","data":"{{user}}","canal":"WA"}`. */
  bodyTemplate?: string;
  headers?: Record<string, string>;
  /** Value of {{last_input_text}} / last_input_text for this request (default: the subscriber's). */
  text?: string;
}

export interface ExternalRequestResult {
  url: string;
  pageId: string;
  subscriberId: string;
  requestBody: string;
  status: number | null;
  error: string | null;
  responseBody: string;
  durationMs: number;
}

export interface AutomationConfig {
  url: string;
  template?: ExternalTemplate;
  bodyTemplate?: string;
  headers?: Record<string, string>;
}

export interface ManyChatSnapshot {
  platform: 'manychat';
  now: string;
  pages: Array<{
    page_id: string;
    page: Record<string, unknown>;
    custom_fields: Record<string, unknown>[];
    tags: Array<{ id: number; name: string }>;
    /** getInfo shape for every subscriber (the API itself cannot list them). */
    subscribers: Record<string, unknown>[];
  }>;
}

export interface ManyChatSim extends BaseSim<ManyChatSnapshot, ManyChatMutationSummary> {
  readonly model: ManyChatModel;
  /** Emits one External Request as a flow's action would. No signature, no retry. */
  externalRequest(input: ExternalRequestInput): Promise<ExternalRequestResult>;
  /** A contact writes to the page: last_input_text / last_interaction move, then the automation (or `url`) fires. */
  simulateInbound(
    input: Omit<ExternalRequestInput, 'url'> & { text: string; url?: string },
  ): Promise<ExternalRequestResult | null>;
  /** The flow that fires on inbound messages of a page (also used by mutate()). null removes it. */
  setAutomation(pageId: string, cfg: AutomationConfig | null): void;
  readonly externalRequests: ExternalRequestResult[];
  /** Waits for External Requests started by mutate(). */
  idle(): Promise<void>;
}

const DEFAULT_CUSTOM_TEMPLATE =
  '{"subscriber_id":"{{subscriber_id}}","text":"{{last_input_text}}","phone":"{{phone}}","data":"{{user}}","canal":"WA"}';

function ok(data?: unknown): SimResponse {
  return json(200, data === undefined ? { status: 'success' } : { status: 'success', data });
}

function fail(message: string, details: string[] = [message], extra: Record<string, unknown> = {}): SimResponse {
  return json(400, { status: 'error', message, details: { messages: details.map((m) => ({ message: m })) }, ...extra });
}

function isResponse(x: McSubscriber | SimResponse): x is SimResponse {
  return typeof x.status === 'number';
}

function phoneCountryCode(e164: string | null): string | null {
  if (!e164) return null;
  for (const cc of ['61', '64', '44', '62', '1']) if (e164.startsWith(`+${cc}`)) return cc;
  return null;
}

export async function startManyChat(opts: ManyChatOptions): Promise<ManyChatSim> {
  if (!opts.pages || opts.pages.length === 0) throw new Error('startManyChat needs at least one page');
  const model = new ManyChatModel({
    seed: opts.seed ?? 1,
    scale: opts.scale ?? 1,
    nowMs: resolveNow(opts.now),
    pages: opts.pages,
  });
  const rl = opts.rateLimit ?? {};
  const windowMs = rl.windowMs ?? SECOND;
  const limiters = new Map<string, FixedWindowLimiter>();
  const limiterFor = (path: string) => {
    let l = limiters.get(path);
    if (!l) {
      l = new FixedWindowLimiter(rl.limits?.[path] ?? MANYCHAT_RPS[path] ?? DEFAULT_RPS, windowMs, rl.enabled ?? true);
      limiters.set(path, l);
    }
    return l;
  };
  const flowCap = rl.sendFlowPerSubscriberPerHour ?? 100;
  const automations = new Map<string, AutomationConfig>();
  const externalRequests: ExternalRequestResult[] = [];
  const inflight = new Set<Promise<unknown>>();
  const erTimeout = opts.externalRequestTimeoutMs ?? 10_000;

  // ---------------------------------------------------------------- shapes

  const ts = (page: McPage, ms: number | null) => (ms === null ? null : isoWithOffset(ms, page.offsetMinutes));

  function fieldValue(page: McPage, f: McField, v: string | number | boolean | null): unknown {
    if (v === null) return null;
    if (f.type === 'datetime' && typeof v === 'number') return ts(page, v);
    return v;
  }

  function subscriberJson(page: McPage, s: McSubscriber): Record<string, unknown> {
    return {
      id: s.id,
      page_id: page.pageId,
      user_refs: [],
      first_name: s.firstName,
      last_name: s.lastName,
      name: `${s.firstName} ${s.lastName}`.trim(),
      gender: s.gender,
      profile_pic: s.profilePic,
      locale: s.locale,
      language: s.language,
      timezone: s.timezone,
      live_chat_url: `https://app.manychat.com/fb${page.pageId}/chat/${s.id}`,
      last_input_text: s.lastInputText,
      optin_phone: s.optinPhone,
      phone: s.phone,
      optin_email: s.optinEmail,
      email: s.email,
      subscribed: ts(page, s.subscribedMs),
      last_interaction: ts(page, s.lastInteractionMs),
      ig_last_interaction: ts(page, s.igLastInteractionMs),
      last_seen: ts(page, s.lastSeenMs),
      ig_last_seen: ts(page, s.igLastSeenMs),
      is_followup_enabled: s.isFollowupEnabled,
      ig_username: s.igUsername,
      ig_id: s.igId,
      whatsapp_phone: s.whatsappPhone,
      optin_whatsapp: s.optinWhatsapp,
      custom_fields: page.fields.map((f) => ({
        id: f.id,
        name: f.name,
        type: f.type,
        description: f.description,
        value: fieldValue(page, f, s.customFields.get(f.id)?.value ?? null),
      })),
      tags: s.tags.map((id) => page.tags.find((t) => t.id === id)).filter((t) => t !== undefined),
    };
  }

  /** Full Contact Data (`{{user}}`): custom_fields is a map keyed by field NAME. */
  function fullContact(page: McPage, s: McSubscriber, text?: string): Record<string, unknown> {
    const customFields: Record<string, unknown> = {};
    for (const f of page.fields) customFields[f.name] = fieldValue(page, f, s.customFields.get(f.id)?.value ?? null);
    return {
      id: s.id,
      key: `user:${s.id}`,
      page_id: page.pageId,
      user_refs: [],
      status: s.status,
      first_name: s.firstName,
      last_name: s.lastName,
      name: `${s.firstName} ${s.lastName}`.trim(),
      gender: s.gender,
      profile_pic: s.profilePic,
      locale: s.locale,
      language: s.language,
      timezone: s.timezone,
      live_chat_url: `https://app.manychat.com/fb${page.pageId}/chat/${s.id}`,
      last_input_text: text ?? s.lastInputText,
      optin_phone: s.optinPhone,
      phone: s.phone,
      optin_email: s.optinEmail,
      email: s.email,
      subscribed: ts(page, s.subscribedMs),
      last_interaction: ts(page, s.lastInteractionMs),
      ig_last_interaction: ts(page, s.igLastInteractionMs),
      last_seen: ts(page, s.lastSeenMs),
      ig_last_seen: ts(page, s.igLastSeenMs),
      is_followup_enabled: s.isFollowupEnabled,
      ig_username: s.igUsername,
      ig_id: s.igId,
      whatsapp_phone: s.whatsappPhone,
      whatsapp_bsuid: null,
      whatsapp_username: null,
      optin_whatsapp: s.optinWhatsapp,
      tt_user_id: null,
      tt_username: null,
      tt_optin: false,
      phone_country_code: phoneCountryCode(s.whatsappPhone ?? s.phone),
      last_growth_tool: s.lastGrowthTool,
      custom_fields: customFields,
    };
  }

  function pageInfo(page: McPage): Record<string, unknown> {
    const numeric = /^\d+$/.test(page.pageId) && Number.isSafeInteger(Number(page.pageId));
    return {
      id: numeric ? Number(page.pageId) : page.pageId,
      name: page.name,
      category: 'Medical & Health',
      avatar_link: `https://manybot-thumbnails.s3.eu-central-1.amazonaws.com/${page.pageId}/avatar.jpg`,
      username: page.name.toLowerCase().replace(/[^a-z0-9]+/g, ''),
      about: `${page.name}: physiotherapy and rehab`,
      description: '',
      is_pro: true,
      timezone: page.profile.timeZone,
    };
  }

  // ---------------------------------------------------------------- external requests

  const escapeJson = (s: string) => JSON.stringify(s).slice(1, -1);

  function renderBody(
    page: McPage,
    s: McSubscriber,
    template: ExternalTemplate,
    bodyTemplate: string | undefined,
    text?: string,
  ): string {
    const user = fullContact(page, s, text);
    if (template === 'full_contact') return JSON.stringify(user);
    const vars: Record<string, string> = {
      subscriber_id: s.id,
      user_id: s.id,
      first_name: s.firstName,
      last_name: s.lastName,
      full_name: `${s.firstName} ${s.lastName}`.trim(),
      name: `${s.firstName} ${s.lastName}`.trim(),
      email: s.email ?? '',
      phone: s.phone ?? s.whatsappPhone ?? '',
      whatsapp_phone: s.whatsappPhone ?? '',
      last_input_text: text ?? s.lastInputText ?? '',
      page_id: page.pageId,
      timezone: s.timezone,
      user: JSON.stringify(user),
    };
    for (const f of page.fields) {
      const v = s.customFields.get(f.id)?.value;
      vars[`cuf_${f.id}`] = v === undefined || v === null ? '' : String(fieldValue(page, f, v));
    }
    // Values land inside the author's JSON string literals, so they are JSON-escaped (a `{{user}}` in quotes
    // becomes a JSON document inside a string).
    return (bodyTemplate ?? DEFAULT_CUSTOM_TEMPLATE).replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_, k: string) =>
      escapeJson(vars[k] ?? ''),
    );
  }

  async function externalRequest(input: ExternalRequestInput): Promise<ExternalRequestResult> {
    const page = model.page(input.pageId);
    if (!page) throw new Error(`unknown ManyChat page ${input.pageId}`);
    const sub = page.byId.get(input.subscriberId);
    if (!sub) throw new Error(`unknown subscriber ${input.subscriberId} on page ${input.pageId}`);
    const body = renderBody(page, sub, input.template ?? 'full_contact', input.bodyTemplate, input.text);
    const result: ExternalRequestResult = {
      url: input.url,
      pageId: page.pageId,
      subscriberId: sub.id,
      requestBody: body,
      status: null,
      error: null,
      responseBody: '',
      durationMs: 0,
    };
    const started = Date.now();
    try {
      const res = await fetch(input.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'ManyChat', ...(input.headers ?? {}) },
        body,
        signal: AbortSignal.timeout(erTimeout),
        redirect: 'manual',
      });
      result.status = res.status;
      result.responseBody = await res.text().catch(() => '');
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      result.error = e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.message);
    }
    result.durationMs = Date.now() - started;
    externalRequests.push(result);
    return result;
  }

  async function simulateInbound(input: Omit<ExternalRequestInput, 'url'> & { text: string; url?: string }) {
    const page = model.page(input.pageId);
    if (!page) throw new Error(`unknown ManyChat page ${input.pageId}`);
    const sub = page.byId.get(input.subscriberId);
    if (!sub) throw new Error(`unknown subscriber ${input.subscriberId}`);
    model.recordInbound(page, sub, input.text, model.clock.advance(SECOND));
    const auto = automations.get(page.pageId);
    const url = input.url ?? auto?.url;
    if (!url) return null;
    const req: ExternalRequestInput = { pageId: page.pageId, subscriberId: sub.id, url };
    const template = input.template ?? auto?.template;
    if (template) req.template = template;
    const bodyTemplate = input.bodyTemplate ?? auto?.bodyTemplate;
    if (bodyTemplate) req.bodyTemplate = bodyTemplate;
    const headers = input.headers ?? auto?.headers;
    if (headers) req.headers = headers;
    return externalRequest(req);
  }

  model.onInbound = (page, sub) => {
    const auto = automations.get(page.pageId);
    if (!auto) return;
    const req: ExternalRequestInput = { pageId: page.pageId, subscriberId: sub.id, url: auto.url };
    if (auto.template) req.template = auto.template;
    if (auto.bodyTemplate) req.bodyTemplate = auto.bodyTemplate;
    if (auto.headers) req.headers = auto.headers;
    const p = externalRequest(req).finally(() => inflight.delete(p));
    inflight.add(p);
  };

  // ---------------------------------------------------------------- REST

  function body(req: SimRequest): Record<string, unknown> | null {
    if (req.body.length === 0) return {};
    try {
      const v: unknown = JSON.parse(req.body.toString('utf8'));
      return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }

  function findSub(page: McPage, id: unknown): McSubscriber | SimResponse {
    if (id === undefined || id === null || id === '')
      return fail('Validation error', ['subscriber_id: This value should not be blank.']);
    const s = page.byId.get(String(id));
    return s ?? fail('Subscriber does not exist');
  }

  function coerceField(
    f: McField,
    v: unknown,
    page: McPage,
  ): { ok: true; value: string | number | boolean | null } | { ok: false; error: string } {
    if (v === null) return { ok: true, value: null };
    const t: McFieldType = f.type;
    if (t === 'text')
      return typeof v === 'string' || typeof v === 'number'
        ? { ok: true, value: String(v) }
        : { ok: false, error: 'Wrong field value type' };
    if (t === 'number') {
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
      return Number.isFinite(n)
        ? { ok: true, value: n }
        : { ok: false, error: 'Wrong field value type: number expected' };
    }
    if (t === 'boolean')
      return typeof v === 'boolean'
        ? { ok: true, value: v }
        : { ok: false, error: 'Wrong field value type: boolean expected' };
    if (t === 'date')
      return typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v)
        ? { ok: true, value: v }
        : { ok: false, error: 'Wrong date format, expected YYYY-MM-DD' };
    // datetime: W3C with offset
    if (
      typeof v === 'string' &&
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)$/.test(v) &&
      !Number.isNaN(Date.parse(v))
    )
      return { ok: true, value: Date.parse(v) };
    void page;
    return { ok: false, error: 'Wrong datetime format, expected e.g. 2018-07-02T00:00:00+00:00' };
  }

  function fieldByIdOrName(page: McPage, id: unknown, name: unknown): McField | undefined {
    if (id !== undefined && id !== null) return page.fields.find((f) => f.id === Number(id));
    if (typeof name === 'string') return page.fields.find((f) => f.name === name);
    return undefined;
  }

  const E164 = /^\+[1-9]\d{6,14}$/;

  function route(page: McPage, req: SimRequest, path: string): SimResponse | null {
    const q = req.query;
    const isGet = req.method === 'GET';
    const now = model.clock.nowMs;
    // ---------------- page
    if (path === '/fb/page/getInfo' && isGet) return ok(pageInfo(page));
    if (path === '/fb/page/getTags' && isGet) return ok(page.tags.map((t) => ({ id: t.id, name: t.name })));
    if (path === '/fb/page/getCustomFields' && isGet)
      return ok(page.fields.map((f) => ({ id: f.id, name: f.name, type: f.type, description: f.description })));
    if (path === '/fb/page/getBotFields' && isGet)
      return ok(
        page.botFields.map((f) => ({
          id: f.id,
          name: f.name,
          type: f.type,
          description: f.description,
          value: f.value,
        })),
      );
    if (path === '/fb/page/getFlows' && isGet) return ok({ flows: page.flows, folders: [] });
    if ((path === '/fb/page/getGrowthTools' || path === '/fb/page/getWidgets') && isGet)
      return ok([{ id: 42, name: 'Instagram bio link', type: 'ref_url' }]);
    if (path === '/fb/page/getOtnTopics' && isGet) return ok([]);
    // ---------------- subscriber reads
    if (path === '/fb/subscriber/getInfo' && isGet) {
      const s = findSub(page, q.get('subscriber_id'));
      return isResponse(s) ? s : ok(subscriberJson(page, s));
    }
    if (path === '/fb/subscriber/findByName' && isGet) {
      const name = q.get('name');
      if (!name) return fail('Validation error', ['name: This value should not be blank.']);
      const n = name.toLowerCase();
      return ok(
        page.subscribers
          .filter((s) => `${s.firstName} ${s.lastName}`.trim().toLowerCase() === n)
          .slice(0, 100)
          .map((s) => subscriberJson(page, s)),
      );
    }
    if (path === '/fb/subscriber/findByCustomField' && isGet) {
      const f = page.fields.find((x) => x.id === Number(q.get('field_id')));
      if (!f) return fail('Field not found');
      if (f.type !== 'text' && f.type !== 'number') return fail('Search is available only for Text and Number fields');
      const raw = q.get('field_value');
      if (raw === null) return fail('Validation error', ['field_value: This value should not be blank.']);
      const matches = page.subscribers
        .filter((s) => {
          const v = s.customFields.get(f.id);
          if (!v || v.value === null) return false;
          return f.type === 'number' ? Number(v.value) === Number(raw) : String(v.value) === raw;
        })
        .sort((a, b) => (b.customFields.get(f.id)?.updatedAtMs ?? 0) - (a.customFields.get(f.id)?.updatedAtMs ?? 0))
        .slice(0, 100);
      return ok(matches.map((s) => subscriberJson(page, s)));
    }
    if (path === '/fb/subscriber/findBySystemField' && isGet) {
      const email = q.get('email');
      const phone = q.get('phone');
      if ((email ? 1 : 0) + (phone ? 1 : 0) !== 1)
        return fail('Validation error', ['Exactly one of email or phone must be set']);
      const s = email
        ? page.subscribers.find((x) => x.email !== null && x.email.toLowerCase() === email.toLowerCase())
        : page.subscribers.find((x) => x.phone === phone);
      return s ? ok(subscriberJson(page, s)) : fail('Subscriber not found');
    }
    if (path === '/fb/subscriber/getInfoByUserRef' && isGet)
      return json(400, { status: 'error', message: 'User ref not found', code: 2011 });
    if (isGet) return null;
    // ---------------- writes
    const b = body(req);
    if (b === null) return fail('Validation error', ['Invalid JSON body']);
    if (path === '/fb/page/createTag') {
      const name = b.name;
      if (typeof name !== 'string' || name === '')
        return fail('Validation error', ['name: This value should not be blank.']);
      if (page.tags.some((t) => t.name === name)) return fail('Tag with this name already exists');
      const tag = { id: page.nextTagId++, name };
      page.tags.push(tag);
      return ok({ tag });
    }
    if (path === '/fb/page/removeTag' || path === '/fb/page/removeTagByName') {
      const tag = path.endsWith('ByName')
        ? page.tags.find((t) => t.name === b.tag_name)
        : page.tags.find((t) => t.id === Number(b.tag_id));
      if (!tag) return fail('Tag not found');
      page.tags = page.tags.filter((t) => t !== tag);
      for (const s of page.subscribers) s.tags = s.tags.filter((id) => id !== tag.id);
      return ok();
    }
    if (path === '/fb/page/createCustomField') {
      const caption = b.caption;
      const type = b.type as McFieldType;
      if (typeof caption !== 'string' || caption === '')
        return fail('Validation error', ['caption: This value should not be blank.']);
      if (!['text', 'number', 'date', 'datetime', 'boolean'].includes(type))
        return fail('Validation error', ['type: The value you selected is not a valid choice.']);
      if (page.fields.some((f) => f.name === caption)) return fail('Field with this name already exists');
      const field: McField = {
        id: page.nextFieldId++,
        name: caption,
        type,
        description: typeof b.description === 'string' ? b.description : '',
      };
      page.fields.push(field);
      return ok({ field });
    }
    if (path === '/fb/page/setBotField' || path === '/fb/page/setBotFieldByName') {
      const f = path.endsWith('ByName')
        ? page.botFields.find((x) => x.name === b.field_name)
        : page.botFields.find((x) => x.id === Number(b.field_id));
      if (!f) return fail('Field not found');
      const c = coerceField(f, b.field_value, page);
      if (!c.ok) return fail('Validation error', [c.error]);
      f.value = c.value;
      return ok();
    }
    const s = findSub(page, b.subscriber_id);
    if (path === '/fb/subscriber/createSubscriber') {
      const phone = typeof b.phone === 'string' ? b.phone : null;
      const wa = typeof b.whatsapp_phone === 'string' ? b.whatsapp_phone : null;
      const email = typeof b.email === 'string' ? b.email : null;
      if (!phone && !wa && !email)
        return fail('Validation error', ['One of phone, whatsapp_phone or email is required']);
      for (const p of [phone, wa])
        if (p && !E164.test(p)) return fail('Validation error', [`Invalid phone number: ${p}`]);
      if (b.has_opt_in_sms === true && typeof b.consent_phrase !== 'string')
        return fail('Validation error', ['consent_phrase is required when has_opt_in_sms is true']);
      if (
        page.subscribers.some(
          (x) => (phone && x.phone === phone) || (wa && x.whatsappPhone === wa) || (email && x.email === email),
        )
      )
        return fail('Subscriber with this phone or email already exists');
      const created = model.newSubscriber(
        page,
        {
          firstName: typeof b.first_name === 'string' ? b.first_name : '',
          lastName: typeof b.last_name === 'string' ? b.last_name : '',
          phone,
          whatsappPhone: wa,
          email,
          gender: b.gender === 'male' || b.gender === 'female' ? b.gender : null,
          optinPhone: b.has_opt_in_sms === true,
          optinEmail: b.has_opt_in_email === true,
        },
        rngFor(model.seed, 'mc-create', page.index, page.subscribers.length),
      );
      return ok(subscriberJson(page, created));
    }
    if (isResponse(s)) return s;
    if (path === '/fb/subscriber/updateSubscriber') {
      if (typeof b.first_name === 'string') s.firstName = b.first_name;
      if (typeof b.last_name === 'string') s.lastName = b.last_name;
      if (typeof b.phone === 'string') {
        if (!E164.test(b.phone)) return fail('Validation error', [`Invalid phone number: ${b.phone}`]);
        s.phone = b.phone;
      }
      if (typeof b.email === 'string') s.email = b.email;
      if (b.gender === 'male' || b.gender === 'female') s.gender = b.gender;
      if (typeof b.has_opt_in_sms === 'boolean') s.optinPhone = b.has_opt_in_sms;
      if (typeof b.has_opt_in_email === 'boolean') s.optinEmail = b.has_opt_in_email;
      return ok(subscriberJson(page, s));
    }
    if (
      path === '/fb/subscriber/addTag' ||
      path === '/fb/subscriber/addTagByName' ||
      path === '/fb/subscriber/removeTag' ||
      path === '/fb/subscriber/removeTagByName'
    ) {
      const tag = path.endsWith('ByName')
        ? page.tags.find((t) => t.name === b.tag_name)
        : page.tags.find((t) => t.id === Number(b.tag_id));
      if (!tag) return fail('Tag not found');
      if (path.includes('add')) {
        if (!s.tags.includes(tag.id)) s.tags.push(tag.id);
      } else s.tags = s.tags.filter((id) => id !== tag.id);
      return ok();
    }
    if (path === '/fb/subscriber/setCustomField' || path === '/fb/subscriber/setCustomFieldByName') {
      const f = path.endsWith('ByName')
        ? fieldByIdOrName(page, undefined, b.field_name)
        : fieldByIdOrName(page, b.field_id, undefined);
      if (!f) return fail('Field not found');
      const c = coerceField(f, b.field_value, page);
      if (!c.ok) return fail('Validation error', [c.error]);
      s.customFields.set(f.id, { value: c.value, updatedAtMs: now });
      return ok();
    }
    if (path === '/fb/subscriber/setCustomFields') {
      const fields = b.fields;
      if (!Array.isArray(fields) || fields.length === 0)
        return fail('Validation error', ['fields: This value should not be blank.']);
      if (fields.length > 20)
        return fail('Validation error', ['fields: This collection should contain 20 elements or less.']);
      const staged: Array<[McField, string | number | boolean | null]> = [];
      for (const item of fields as Array<Record<string, unknown>>) {
        const f = fieldByIdOrName(page, item.field_id, item.field_name);
        if (!f) return fail('Field not found');
        const c = coerceField(f, item.field_value, page);
        if (!c.ok) return fail('Validation error', [c.error]);
        staged.push([f, c.value]);
      }
      for (const [f, v] of staged) s.customFields.set(f.id, { value: v, updatedAtMs: now });
      return ok();
    }
    if (path === '/fb/subscriber/verifyBySignedRequest') return fail('Invalid signed request');
    if (path === '/fb/sending/sendContent') {
      const data = b.data as { version?: unknown; content?: { messages?: unknown } } | undefined;
      if (data?.version !== 'v2' || !data.content || !Array.isArray(data.content.messages))
        return fail('Validation error', ['data: content v2 with content.messages is required']);
      if ((data.content.messages as unknown[]).length > 10)
        return fail('Validation error', ['data.content.messages: at most 10 messages']);
      const last = s.lastInteractionMs;
      if (!b.message_tag && (last === null || now - last > 24 * HOUR))
        return json(400, {
          status: 'error',
          message:
            "Subscriber hasn't interacted with the page in the last 24 hours. Use a message tag to send the message",
          code: 3011,
        });
      page.sent.push({ subscriberId: s.id, kind: 'content', at: now, payload: data });
      return ok();
    }
    if (path === '/fb/sending/sendFlow') {
      const flow = page.flows.find((f) => f.ns === b.flow_ns);
      if (!flow) return fail('Flow not found');
      const hourAgo = Date.now() - HOUR;
      s.flowSends = s.flowSends.filter((t) => t > hourAgo);
      if (s.flowSends.length >= flowCap)
        return rateLimited(`sendFlow is limited to ${flowCap} calls per subscriber per hour`);
      s.flowSends.push(Date.now());
      page.sent.push({ subscriberId: s.id, kind: 'flow', at: now, payload: { flow_ns: flow.ns } });
      return ok();
    }
    return null;
  }

  function rateLimited(detail: string): SimResponse {
    return json(429, { status: 'error', message: 'Too Many Requests', details: { messages: [{ message: detail }] } });
  }

  const KNOWN = new Set([
    ...Object.keys(MANYCHAT_RPS),
    '/fb/page/createTag',
    '/fb/page/removeTag',
    '/fb/page/removeTagByName',
    '/fb/page/createCustomField',
    '/fb/page/createBotField',
    '/fb/page/setBotField',
    '/fb/page/setBotFieldByName',
    '/fb/page/setBotFields',
    '/fb/subscriber/getInfo',
    '/fb/subscriber/findByName',
    '/fb/subscriber/findByCustomField',
    '/fb/subscriber/getInfoByUserRef',
    '/fb/subscriber/addTag',
    '/fb/subscriber/addTagByName',
    '/fb/subscriber/removeTag',
    '/fb/subscriber/removeTagByName',
    '/fb/subscriber/setCustomField',
    '/fb/subscriber/setCustomFields',
    '/fb/subscriber/setCustomFieldByName',
    '/fb/subscriber/verifyBySignedRequest',
    '/fb/subscriber/createSubscriber',
    '/fb/subscriber/updateSubscriber',
  ]);

  function handle(req: SimRequest): SimResponse {
    const path = req.path.replace(/\/$/, '');
    if (!KNOWN.has(path)) return json(404, { status: 'error', message: 'Not Found' });
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(h);
    const page = m ? model.pages.find((p) => p.token === (m[1] as string).trim()) : undefined;
    if (!page)
      return json(401, {
        status: 'error',
        message: 'Wrong token',
        details: { messages: [{ message: 'Wrong token' }] },
      });
    const lim = limiterFor(path).hit(`${page.pageId}`);
    if (!lim.allowed)
      return rateLimited(`Rate limit exceeded: ${limiterFor(path).limit} requests per ${windowMs} ms for ${path}`);
    const out = route(page, req, path);
    return out ?? json(405, { status: 'error', message: 'Method Not Allowed' });
  }

  function snapshot(): ManyChatSnapshot {
    return {
      platform: 'manychat',
      now: new Date(model.clock.nowMs).toISOString(),
      pages: model.pages.map((page) => ({
        page_id: page.pageId,
        page: pageInfo(page),
        custom_fields: page.fields.map((f) => ({ id: f.id, name: f.name, type: f.type, description: f.description })),
        tags: page.tags.map((t) => ({ id: t.id, name: t.name })),
        subscribers: [...page.subscribers]
          .sort((a, b) => a.subscribedMs - b.subscribedMs || a.id.localeCompare(b.id))
          .map((s) => subscriberJson(page, s)),
      })),
    };
  }

  const faults = new FaultController(opts.faults);
  const host = new SimHost(
    {
      handle,
      group: (req) => req.path.replace(/\/$/, ''),
      fault5xx: (v) =>
        v === 0
          ? json(500, { status: 'error', message: 'Internal Server Error' })
          : v === 1
            ? html(502, NGINX_502)
            : html(503, NGINX_503),
      fault429: (req) => rateLimited(`Rate limit exceeded for ${req.path}`),
      snapshot: () => snapshot(),
      mutate: (steps) => model.mutate(steps),
      control: async (req, sub) => {
        const b = body(req) ?? {};
        if (sub === 'inbound' && req.method === 'POST')
          return json(
            200,
            await simulateInbound(b as unknown as Omit<ExternalRequestInput, 'url'> & { text: string; url?: string }),
          );
        if (sub === 'automation' && req.method === 'POST') {
          setAutomation(String(b.pageId), (b.automation ?? null) as AutomationConfig | null);
          return json(200, { ok: true });
        }
        if (sub === 'external_requests' && req.method === 'GET') return json(200, externalRequests);
        return undefined;
      },
    },
    faults,
  );
  const origin = await host.listen(opts.port ?? 0);

  function setAutomation(pageId: string, cfg: AutomationConfig | null): void {
    if (!model.page(pageId)) throw new Error(`unknown ManyChat page ${pageId}`);
    if (cfg) automations.set(pageId, cfg);
    else automations.delete(pageId);
  }

  return track<ManyChatSim>({
    url: origin,
    origin,
    model,
    close: async () => {
      await Promise.allSettled([...inflight]);
      await host.close();
    },
    get stats() {
      return host.stats;
    },
    resetStats: () => host.resetStats(),
    faults,
    mutate: (steps = 1) => model.mutate(steps),
    snapshot,
    now: () => model.clock.nowMs,
    externalRequest,
    simulateInbound,
    setAutomation,
    externalRequests,
    idle: async () => {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
    },
  });
}
