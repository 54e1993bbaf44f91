/**
 * Account webhooks as Chatwoot ≥ 4.12 delivers them: one POST per event and webhook, 5 s timeout,
 * no retry, signed with `X-Chatwoot-Signature: sha256=HMAC(secret, "<ts>.<body>")`.
 * Deliveries run concurrently (Chatwoot queues one job per delivery), so order is not guaranteed.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { rngFor } from '../common/prng.ts';
import type { ChatwootModel, CwEvent } from './model.ts';
import type { ChatwootRenderer } from './render.ts';

export const ALLOWED_WEBHOOK_EVENTS = [
  'conversation_status_changed',
  'conversation_updated',
  'conversation_created',
  'contact_created',
  'contact_updated',
  'message_created',
  'message_updated',
  'webwidget_triggered',
  'inbox_created',
  'inbox_updated',
  'conversation_typing_on',
  'conversation_typing_off',
] as const;

export interface ChatwootWebhook {
  id: number;
  accountId: number;
  url: string;
  name: string | null;
  subscriptions: string[];
  secret: string;
}

export interface WebhookDelivery {
  deliveryId: string;
  webhookId: number;
  accountId: number;
  event: string;
  url: string;
  /** HTTP status from the receiver, or null when the attempt failed. */
  status: number | null;
  error: string | null;
  durationMs: number;
  /** Value of X-Chatwoot-Timestamp. */
  timestamp: number;
  /** The exact body sent. */
  body: string;
}

export interface WebhookInput {
  url: string;
  subscriptions: string[];
  name?: string | null;
  secret?: string;
}

export type WebhookValidation =
  | { ok: true; webhook: ChatwootWebhook }
  | { ok: false; message: string; attributes: string[] };

/** Signature as the receiver must compute it. */
export function signChatwootWebhook(secret: string, timestamp: number | string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export class ChatwootWebhooks {
  private hooks: ChatwootWebhook[] = [];
  private nextId = 1;
  private inflight = new Set<Promise<void>>();
  readonly deliveries: WebhookDelivery[] = [];

  constructor(
    private readonly model: ChatwootModel,
    private readonly renderer: ChatwootRenderer,
    private readonly timeoutMs: number,
  ) {
    model.listener = (e) => this.onEvent(e);
  }

  list(accountId: number): ChatwootWebhook[] {
    return this.hooks.filter((h) => h.accountId === accountId);
  }

  get(accountId: number, id: number): ChatwootWebhook | undefined {
    return this.hooks.find((h) => h.accountId === accountId && h.id === id);
  }

  private validate(
    accountId: number,
    input: Partial<WebhookInput>,
    selfId?: number,
  ): { message: string; attributes: string[] } | null {
    const errors: string[] = [];
    const attrs: string[] = [];
    let urlOk = false;
    if (typeof input.url === 'string') {
      try {
        const u = new URL(input.url);
        urlOk = u.protocol === 'http:' || u.protocol === 'https:';
      } catch {
        urlOk = false;
      }
    }
    if (!urlOk) {
      errors.push('Url is invalid');
      attrs.push('url');
    } else if (this.hooks.some((h) => h.accountId === accountId && h.url === input.url && h.id !== selfId)) {
      errors.push('Url has already been taken');
      attrs.push('url');
    }
    const subs = input.subscriptions;
    if (
      !Array.isArray(subs) ||
      subs.length === 0 ||
      subs.some((s) => typeof s !== 'string' || !(ALLOWED_WEBHOOK_EVENTS as readonly string[]).includes(s))
    ) {
      errors.push('Subscriptions Invalid events');
      attrs.push('subscriptions');
    }
    return errors.length > 0 ? { message: errors.join(', '), attributes: attrs } : null;
  }

  create(accountId: number, input: Partial<WebhookInput>): WebhookValidation {
    const err = this.validate(accountId, input);
    if (err) return { ok: false, ...err };
    const account = this.model.accountsById.get(accountId);
    const id = this.nextId++;
    const secret =
      input.secret ?? account?.webhookSecret ?? rngFor(this.model.seed, 'cw-webhook-secret', id).base58(24);
    const webhook: ChatwootWebhook = {
      id,
      accountId,
      url: input.url as string,
      name: input.name ?? null,
      subscriptions: [...new Set(input.subscriptions as string[])],
      secret,
    };
    this.hooks.push(webhook);
    return { ok: true, webhook };
  }

  update(accountId: number, id: number, input: Partial<WebhookInput>): WebhookValidation | undefined {
    const hook = this.get(accountId, id);
    if (!hook) return undefined;
    const merged = { url: input.url ?? hook.url, subscriptions: input.subscriptions ?? hook.subscriptions };
    const err = this.validate(accountId, merged, id);
    if (err) return { ok: false, ...err };
    hook.url = merged.url;
    hook.subscriptions = [...new Set(merged.subscriptions)];
    if (input.name !== undefined) hook.name = input.name;
    return { ok: true, webhook: hook };
  }

  remove(accountId: number, id: number): boolean {
    const before = this.hooks.length;
    this.hooks = this.hooks.filter((h) => !(h.accountId === accountId && h.id === id));
    return this.hooks.length !== before;
  }

  /** Programmatic subscribe (same validation as the REST route). Throws on invalid input. */
  subscribe(accountId: number, input: WebhookInput): ChatwootWebhook {
    if (!this.model.accountsById.has(accountId)) throw new Error(`unknown Chatwoot account ${accountId}`);
    const res = this.create(accountId, input);
    if (!res.ok) throw new Error(res.message);
    return res.webhook;
  }

  json(h: ChatwootWebhook): Record<string, unknown> {
    return {
      id: h.id,
      url: h.url,
      account_id: h.accountId,
      name: h.name,
      subscriptions: h.subscriptions,
      inbox: null,
      secret: h.secret,
    };
  }

  /** Resolves when every delivery started so far has finished (or timed out). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private onEvent(e: CwEvent): void {
    const targets = this.hooks.filter((h) => h.accountId === e.account.id && h.subscriptions.includes(e.event));
    if (targets.length === 0) return;
    let payload: Record<string, unknown> | null;
    switch (e.event) {
      case 'message_created':
      case 'message_updated':
        // webhook_sendable?: incoming, outgoing and template only. Private notes ARE sent.
        payload = e.message.kind === 'activity' ? null : this.renderer.messageWebhook(e.message, e.event);
        break;
      case 'conversation_created':
        payload = { ...this.renderer.conversationPush(e.conversation), event: e.event };
        break;
      case 'conversation_updated':
      case 'conversation_status_changed':
        payload = {
          ...this.renderer.conversationPush(e.conversation),
          event: e.event,
          changed_attributes: e.changed ?? [],
        };
        break;
      case 'contact_created':
        payload = { ...this.renderer.contactWebhook(e.contact), event: e.event };
        break;
      case 'contact_updated':
        if (!e.changed || e.changed.length === 0) payload = null;
        else payload = { ...this.renderer.contactWebhook(e.contact), event: e.event, changed_attributes: e.changed };
        break;
    }
    if (!payload) return;
    const body = JSON.stringify(payload);
    for (const h of targets) {
      const p = this.deliver(h, e.event, body).finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }
  }

  private async deliver(h: ChatwootWebhook, event: string, body: string): Promise<void> {
    const ts = Math.floor(Date.now() / 1000);
    const deliveryId = randomUUID();
    const started = Date.now();
    const record: WebhookDelivery = {
      deliveryId,
      webhookId: h.id,
      accountId: h.accountId,
      event,
      url: h.url,
      status: null,
      error: null,
      durationMs: 0,
      timestamp: ts,
      body,
    };
    try {
      const res = await fetch(h.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'user-agent': 'rest-client/2.1.0 (linux x86_64) ruby/3.4.4p34',
          'x-chatwoot-delivery': deliveryId,
          'x-chatwoot-timestamp': String(ts),
          'x-chatwoot-signature': signChatwootWebhook(h.secret, ts, body),
        },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'manual',
      });
      record.status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) record.error = `HTTP ${res.status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      record.error = e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.message);
    }
    record.durationMs = Date.now() - started;
    this.deliveries.push(record);
  }
}
