/**
 * Chatwoot ground truth. Contacts and conversations are plain records; messages are lazy:
 * generation only fixes each message's kind, timestamp and id (13 bytes per message in typed arrays),
 * and the content is rebuilt from the seed when a message is read. Mutations append materialised
 * messages and record edits as overrides, so 1e6 messages cost ~13 MB.
 */
import { chatDisplayName, generatePeople, haikuName, type Person, tenantProfile } from '../common/people.ts';
import { Rng, rngFor } from '../common/prng.ts';
import { agentText, botText, editedText, incomingText, type Lang, noteText, templateText } from '../common/text.ts';
import { DAY, HOUR, MINUTE, SECOND, SimClock } from '../common/time.ts';

export type ConvStatus = 'open' | 'resolved' | 'pending' | 'snoozed';
export type Priority = 'low' | 'medium' | 'high' | 'urgent';
export type MsgKind = 'incoming' | 'agent' | 'bot' | 'note' | 'activity' | 'template';
export type ChannelType = 'Channel::Whatsapp' | 'Channel::WebWidget' | 'Channel::Email' | 'Channel::Api';

const KIND_CODES: readonly MsgKind[] = ['incoming', 'agent', 'bot', 'note', 'activity', 'template'];
const KIND_INDEX: Record<MsgKind, number> = { incoming: 0, agent: 1, bot: 2, note: 3, activity: 4, template: 5 };
export const MESSAGE_TYPE_INT: Record<MsgKind, 0 | 1 | 2 | 3> = {
  incoming: 0,
  agent: 1,
  bot: 1,
  note: 1,
  activity: 2,
  template: 3,
};
export const MESSAGE_TYPE_NAME = ['incoming', 'outgoing', 'activity', 'template'] as const;

export interface ChatwootAccountConfig {
  accountId: number;
  /** api_access_token of the account's administrator. The same token may be listed on several accounts. */
  token: string;
  name?: string;
  /** When set, webhooks created in this account (REST or sim.webhooks.subscribe without a secret) use it. */
  webhookSecret?: string;
}

export interface CwInbox {
  id: number;
  accountId: number;
  name: string;
  channelType: ChannelType;
  channelId: number;
  provider: string | null;
  hasBot: boolean;
  phoneNumber: string | null;
}

export interface CwAgent {
  id: number;
  accountId: number;
  name: string;
  email: string;
  role: 'administrator' | 'agent';
  availability: 'online' | 'offline' | 'busy';
}

export interface CwBot {
  id: number;
  name: string;
}

export interface CwTeam {
  id: number;
  accountId: number;
  name: string;
  description: string;
}

export interface CwContactInbox {
  id: number;
  inboxId: number;
  sourceId: string;
  createdAtMs: number;
  pubsubToken: string;
}

export interface CwContact {
  id: number;
  accountId: number;
  name: string;
  email: string | null;
  phone: string | null;
  identifier: string | null;
  customAttributes: Record<string, unknown>;
  additionalAttributes: Record<string, unknown>;
  createdAtMs: number;
  updatedAtMs: number;
  lastActivityAtMs: number | null;
  blocked: boolean;
  inboxes: CwContactInbox[];
  /** Position in Postgres heap order: an UPDATE moves the row to the end. Default /contacts order. */
  heapSeq: number;
  deleted: boolean;
  personIdx: number | null;
  lang: Lang;
}

export interface CwAttachment {
  id: number;
  messageId: number;
  accountId: number;
  fileType: 'image' | 'audio' | 'video' | 'file' | 'location';
  extension: string | null;
  fileName: string;
  fileSize: number;
  width: number | null;
  height: number | null;
  transcribedText?: string;
  lat?: number;
  long?: number;
  fallbackTitle?: string;
}

export interface CwMessage {
  id: number;
  accountId: number;
  inboxId: number;
  convDbId: number;
  displayId: number;
  kind: MsgKind;
  content: string | null;
  contentType: string;
  contentAttributes: Record<string, unknown>;
  additionalAttributes: Record<string, unknown>;
  createdAtMs: number;
  updatedAtMs: number;
  private: boolean;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  sourceId: string | null;
  senderType: 'Contact' | 'User' | 'AgentBot' | null;
  senderId: number | null;
  attachments: CwAttachment[];
}

export interface CwConversation {
  dbId: number;
  displayId: number;
  accountId: number;
  uuid: string;
  inboxId: number;
  contactId: number;
  contactInboxId: number;
  assigneeId: number | null;
  teamId: number | null;
  status: ConvStatus;
  /** Status when the generated history was written: lazily rendered messages depend on it, never on the live status. */
  baseStatus: ConvStatus;
  /** Assignee and contact first name at creation, for the same reason. */
  baseAssigneeId: number | null;
  baseFirstName: string;
  priority: Priority | null;
  labels: string[];
  createdAtMs: number;
  /** Microseconds: rendered as a float of seconds, like Rails' `updated_at.to_f`. */
  updatedAtUs: number;
  lastActivityAtMs: number;
  snoozedUntilMs: number | null;
  firstReplyCreatedAtMs: number | null;
  waitingSinceMs: number | null;
  agentLastSeenAtMs: number | null;
  assigneeLastSeenAtMs: number | null;
  contactLastSeenAtMs: number | null;
  additionalAttributes: Record<string, unknown>;
  customAttributes: Record<string, unknown>;
  seed: number;
  lang: Lang;
  baseStart: number;
  baseCount: number;
  extra: CwMessage[];
  deleted: boolean;
}

export interface CwAccount {
  id: number;
  name: string;
  tenant: number;
  tokens: Set<string>;
  webhookSecret: string | undefined;
  inboxes: CwInbox[];
  agents: CwAgent[];
  bot: CwBot;
  teams: CwTeam[];
  labels: string[];
  contacts: CwContact[];
  contactsById: Map<number, CwContact>;
  /** Index = display_id - 1. */
  conversations: CwConversation[];
  people: Person[];
}

export type CwEventName =
  | 'message_created'
  | 'message_updated'
  | 'conversation_created'
  | 'conversation_updated'
  | 'conversation_status_changed'
  | 'contact_created'
  | 'contact_updated';

export type ChangedAttributes = Array<Record<string, { previous_value: unknown; current_value: unknown }>>;

export type CwEvent =
  | { event: 'message_created' | 'message_updated'; account: CwAccount; message: CwMessage }
  | {
      event: 'conversation_created' | 'conversation_updated' | 'conversation_status_changed';
      account: CwAccount;
      conversation: CwConversation;
      changed?: ChangedAttributes;
    }
  | {
      event: 'contact_created' | 'contact_updated';
      account: CwAccount;
      contact: CwContact;
      changed?: ChangedAttributes;
    };

export interface ChatwootMutationAction {
  type:
    | 'message_incoming'
    | 'message_reply'
    | 'message_edited'
    | 'message_deleted'
    | 'message_status'
    | 'conversation_created'
    | 'conversation_status'
    | 'conversation_reopened'
    | 'conversation_assigned'
    | 'conversation_deleted'
    | 'contact_created'
    | 'contact_updated'
    | 'contact_deleted';
  accountId: number;
  conversationId?: number;
  messageId?: number;
  contactId?: number;
  detail?: string;
}

export interface ChatwootMutationSummary {
  /** Total steps applied since start. */
  step: number;
  /** Simulated time after the last step (ISO). */
  at: string;
  actions: ChatwootMutationAction[];
  counts: Record<string, number>;
}

const STATUS_WEIGHTS: ReadonlyArray<readonly [ConvStatus, number]> = [
  ['open', 35],
  ['resolved', 45],
  ['pending', 12],
  ['snoozed', 8],
];

const AGENT_NAMES = [
  ['Jess Morgan', 'jess'],
  ['Kadek Ayu', 'kadek'],
  ['Tom Becker', 'tom'],
  ['Aroha Ngata', 'aroha'],
  ['Liam Ó Briain', 'liam'],
] as const;

export const DELETED_MESSAGE_CONTENT = 'This message was deleted';

// TriggerScheduledItemsJob's cron: every 5 minutes.
const JOB_EVERY_MS = 5 * MINUTE;

function usFromMs(ms: number, rng: Rng): number {
  // Rails keeps microseconds; make sure the fraction is never zero so the float always shows.
  return Math.floor(ms) * 1000 + rng.int(1, 999);
}

export interface ChatwootModelOptions {
  seed: number;
  scale: number;
  nowMs: number;
  accounts: ChatwootAccountConfig[];
  /** Every new message bumps conversations.updated_at (`belongs_to :conversation, touch: true`). Default false. */
  touchConversationOnMessage?: boolean;
}

export class ChatwootModel {
  readonly seed: number;
  readonly scale: number;
  readonly clock: SimClock;
  /** The dataset's "now" at generation; lazy messages are built against it so they never drift. */
  readonly genNowMs: number;
  readonly accounts: CwAccount[] = [];
  readonly accountsById = new Map<number, CwAccount>();
  readonly tokens = new Map<string, { userId: number; accountIds: Set<number> }>();
  /** Lazy message columns. */
  times: Float64Array = new Float64Array(0);
  ids: Int32Array = new Int32Array(0);
  kinds: Uint8Array = new Uint8Array(0);
  /** Which conversation owns each lazy message slot (dbId). */
  readonly overrides = new Map<number, Partial<CwMessage>>();
  readonly convByDbId = new Map<number, CwConversation>();
  private nextContactId = 48_213;
  private nextConvDbId = 913_000;
  private nextMsgId = 0;
  private nextContactInboxId = 77_000;
  private heapSeq = 0;
  private stepNo = 0;
  listener: ((e: CwEvent) => void) | undefined;
  private readonly touchOnMessage: boolean;

  constructor(opts: ChatwootModelOptions) {
    this.seed = opts.seed;
    this.scale = opts.scale;
    this.clock = new SimClock(opts.nowMs);
    this.genNowMs = opts.nowMs;
    this.touchOnMessage = opts.touchConversationOnMessage ?? false;
    this.generate(opts.accounts);
  }

  get steps(): number {
    return this.stepNo;
  }

  // ------------------------------------------------------------------ generation

  private generate(configs: ChatwootAccountConfig[]): void {
    const now = this.clock.nowMs;
    let nextInboxId = 31;
    let nextUserId = 7;
    let nextTeamId = 3;
    const pending: Array<{ conv: CwConversation; kinds: number[]; times: number[] }> = [];
    const seenIds = new Set<number>();

    configs.forEach((cfg, tenant) => {
      if (seenIds.has(cfg.accountId)) throw new Error(`duplicate Chatwoot accountId ${cfg.accountId}`);
      seenIds.add(cfg.accountId);
      const profile = tenantProfile(tenant);
      const rng = rngFor(this.seed, 'cw-account', tenant);
      const people = generatePeople(this.seed, tenant, Math.max(8, Math.round(40 * this.scale)), now);
      const account: CwAccount = {
        id: cfg.accountId,
        name: cfg.name ?? profile.name,
        tenant,
        tokens: new Set([cfg.token]),
        webhookSecret: cfg.webhookSecret,
        inboxes: [],
        agents: [],
        bot: { id: 90 + tenant, name: 'Reception Bot' },
        teams: [],
        labels: ['new-patient', 'booking', 'billing', 'vip', 'follow-up'],
        contacts: [],
        contactsById: new Map(),
        conversations: [],
        people,
      };
      const waNumber = `+62${rng.digits(10)}`;
      account.inboxes = [
        {
          id: nextInboxId++,
          accountId: account.id,
          name: `${account.name} WhatsApp`,
          channelType: 'Channel::Whatsapp',
          channelId: 400 + tenant * 4,
          provider: 'whatsapp_cloud',
          hasBot: true,
          phoneNumber: waNumber,
        },
        {
          id: nextInboxId++,
          accountId: account.id,
          name: 'Website',
          channelType: 'Channel::WebWidget',
          channelId: 401 + tenant * 4,
          provider: null,
          hasBot: false,
          phoneNumber: null,
        },
        {
          id: nextInboxId++,
          accountId: account.id,
          name: 'Email',
          channelType: 'Channel::Email',
          channelId: 402 + tenant * 4,
          provider: null,
          hasBot: false,
          phoneNumber: null,
        },
        {
          id: nextInboxId++,
          accountId: account.id,
          name: 'Routiq API',
          channelType: 'Channel::Api',
          channelId: 403 + tenant * 4,
          provider: null,
          hasBot: false,
          phoneNumber: null,
        },
      ];
      const agentCount = rng.int(3, 4);
      for (let i = 0; i < agentCount; i++) {
        const [name, handle] = AGENT_NAMES[(tenant + i) % AGENT_NAMES.length] as readonly [string, string];
        account.agents.push({
          id: nextUserId++,
          accountId: account.id,
          name,
          email: `${handle}@${account.name.toLowerCase().replace(/[^a-z]+/g, '')}.example`,
          role: i === 0 ? 'administrator' : 'agent',
          availability: rng.pick(['online', 'offline', 'busy'] as const),
        });
      }
      account.teams = [
        { id: nextTeamId++, accountId: account.id, name: 'front desk', description: 'Bookings and billing' },
        { id: nextTeamId++, accountId: account.id, name: 'physios', description: 'Clinical questions' },
      ];
      const admin = account.agents[0] as CwAgent;
      const tok = this.tokens.get(cfg.token);
      if (tok) tok.accountIds.add(account.id);
      else this.tokens.set(cfg.token, { userId: admin.id, accountIds: new Set([account.id]) });
      this.accounts.push(account);
      this.accountsById.set(account.id, account);

      // Contacts: people on Chatwoot, plus anonymous widget visitors that /contacts never shows.
      const drafts: Array<{ contact: Omit<CwContact, 'id' | 'heapSeq'>; inbox: CwInbox }> = [];
      const usedPhones = new Set<string>();
      for (const p of people) {
        if (!p.onChatwoot) continue;
        const crng = rngFor(this.seed, 'cw-contact', tenant, p.idx);
        let phone = p.mobile && !usedPhones.has(p.mobile.e164) && crng.chance(0.85) ? p.mobile.e164 : null;
        if (phone) usedPhones.add(phone);
        let email = p.email && crng.chance(phone ? 0.35 : 0.9) ? p.email : null;
        let identifier: string | null = null;
        if (!phone && !email) {
          if (crng.chance(0.5)) identifier = `crm_${crng.digits(6)}`;
          else if (p.mobile && !usedPhones.has(p.mobile.e164)) {
            phone = p.mobile.e164;
            usedPhones.add(phone);
          } else email = p.email;
        }
        const inbox = (
          phone
            ? crng.chance(0.88)
              ? account.inboxes[0]
              : account.inboxes[1]
            : email
              ? account.inboxes[2]
              : identifier
                ? account.inboxes[3]
                : account.inboxes[1]
        ) as CwInbox;
        const custom: Record<string, unknown> = {};
        if (p.chatwootLinksCliniko) custom.cliniko_patient_id = p.clinikoId;
        if (crng.chance(0.2)) custom.preferred_clinic = profile.city;
        const additional: Record<string, unknown> = {};
        if (crng.chance(0.6)) {
          additional.city = p.city;
          additional.country = {
            AU: 'Australia',
            NZ: 'New Zealand',
            UK: 'United Kingdom',
            US: 'United States',
            ID: 'Indonesia',
          }[p.country];
          additional.country_code = p.country === 'UK' ? 'GB' : p.country;
        }
        if (crng.chance(0.1))
          additional.company_name = crng.pick(['Bupa', 'Surfing Australia', 'Telstra', 'Freelance']);
        const created = p.firstSeenMs + crng.int(0, 3 * DAY);
        drafts.push({
          contact: {
            accountId: account.id,
            name: chatDisplayName(p, crng),
            email,
            phone,
            identifier,
            customAttributes: custom,
            additionalAttributes: additional,
            createdAtMs: Math.min(created, now - HOUR),
            updatedAtMs: Math.min(created, now - HOUR),
            lastActivityAtMs: null,
            blocked: crng.chance(0.02),
            inboxes: [],
            deleted: false,
            personIdx: p.idx,
            lang: p.country === 'ID' ? 'id' : crng.chance(0.05) ? 'es' : 'en',
          },
          inbox,
        });
      }
      const anonymous = Math.max(2, Math.round(people.length * 0.15));
      for (let i = 0; i < anonymous; i++) {
        const crng = rngFor(this.seed, 'cw-anon', tenant, i);
        const created = now - crng.int(1, 200) * DAY - crng.int(0, DAY);
        drafts.push({
          contact: {
            accountId: account.id,
            name: haikuName(crng),
            email: null,
            phone: null,
            identifier: null,
            customAttributes: {},
            additionalAttributes: { source_id: `widget:${crng.uuid()}` },
            createdAtMs: created,
            updatedAtMs: created,
            lastActivityAtMs: null,
            blocked: false,
            inboxes: [],
            deleted: false,
            personIdx: null,
            lang: 'en',
          },
          inbox: account.inboxes[1] as CwInbox,
        });
      }
      drafts.sort((a, b) => a.contact.createdAtMs - b.contact.createdAtMs);

      const convDrafts: Array<{ conv: CwConversation; kinds: number[]; times: number[] }> = [];
      for (const d of drafts) {
        const contact: CwContact = { ...d.contact, id: this.nextContactId++, heapSeq: this.heapSeq++ };
        account.contacts.push(contact);
        account.contactsById.set(contact.id, contact);
        const crng = rngFor(this.seed, 'cw-convs', tenant, contact.id);
        const n = 1 + (crng.chance(0.35) ? 1 : 0) + (crng.chance(0.1) ? 1 : 0);
        let start = contact.createdAtMs + crng.int(0, 2 * HOUR);
        for (let k = 0; k < n && start < now - 10 * MINUTE; k++) {
          const inbox =
            k === 0 ? d.inbox : contact.phone && crng.chance(0.3) ? (account.inboxes[1] as CwInbox) : d.inbox;
          const built = this.buildConversation(account, contact, inbox, start, crng);
          convDrafts.push(built);
          start = built.times[built.times.length - 1] as number;
          start += crng.int(2, 60) * DAY;
        }
      }
      convDrafts.sort((a, b) => a.conv.createdAtMs - b.conv.createdAtMs);
      convDrafts.forEach((cd, i) => {
        cd.conv.displayId = i + 1;
        account.conversations.push(cd.conv);
        this.convByDbId.set(cd.conv.dbId, cd.conv);
        pending.push(cd);
      });
    });

    // Lay the lazy columns out and give message ids in global created_at order, as a DB sequence would.
    let total = 0;
    for (const p of pending) total += p.kinds.length;
    this.times = new Float64Array(total);
    this.ids = new Int32Array(total);
    this.kinds = new Uint8Array(total);
    let off = 0;
    let minSec = Number.POSITIVE_INFINITY;
    for (const p of pending) {
      p.conv.baseStart = off;
      p.conv.baseCount = p.kinds.length;
      for (let j = 0; j < p.kinds.length; j++) {
        this.times[off + j] = p.times[j] as number;
        this.kinds[off + j] = p.kinds[j] as number;
        minSec = Math.min(minSec, Math.floor((p.times[j] as number) / 1000));
      }
      off += p.kinds.length;
    }
    const bits = Math.max(1, Math.ceil(Math.log2(total + 1)));
    const mul = 2 ** bits;
    const keys = new Float64Array(total);
    for (let i = 0; i < total; i++) keys[i] = (Math.floor((this.times[i] as number) / 1000) - minSec) * mul + i;
    keys.sort();
    const baseId = 2_480_000;
    for (let r = 0; r < total; r++) {
      const k = keys[r] as number;
      const idx = k % mul;
      this.ids[idx] = baseId + r;
    }
    this.nextMsgId = baseId + total + 17;

    for (const p of pending) this.deriveConversation(p.conv);
    for (const account of this.accounts) {
      const byContact = new Map<number, CwConversation[]>();
      for (const cv of account.conversations) {
        const list = byContact.get(cv.contactId);
        if (list) list.push(cv);
        else byContact.set(cv.contactId, [cv]);
      }
      for (const c of account.contacts) {
        const convs = byContact.get(c.id) ?? [];
        let last: number | null = null;
        for (const cv of convs) {
          for (let j = cv.baseCount - 1; j >= 0; j--) {
            if (this.kinds[cv.baseStart + j] === KIND_INDEX.incoming) {
              const t = this.times[cv.baseStart + j] as number;
              if (last === null || t > last) last = t;
              break;
            }
          }
        }
        c.lastActivityAtMs = last;
        if (last !== null) c.updatedAtMs = Math.max(c.updatedAtMs, last);
      }
    }
  }

  private buildConversation(account: CwAccount, contact: CwContact, inbox: CwInbox, startMs: number, prng: Rng) {
    const now = this.clock.nowMs;
    const dbId = this.nextConvDbId++;
    const seed = prng.int(1, 2 ** 31 - 1);
    const rng = new Rng(seed);
    const status: ConvStatus = rng.weighted(STATUS_WEIGHTS);
    let count = 1 + Math.floor(rng.exp(16));
    if (rng.chance(0.05)) count = 120 + rng.int(0, 320);
    if (status === 'resolved' && count < 3) count = 3;

    const kinds: number[] = [];
    const outbound = inbox.channelType === 'Channel::Whatsapp' && rng.chance(0.1);
    const csat = status === 'resolved' && rng.chance(0.3);
    for (let j = 0; j < count; j++) {
      let k: MsgKind;
      if (j === 0) k = outbound ? 'template' : 'incoming';
      else if (j === 1 && outbound) k = 'incoming';
      else if (j === 1 && inbox.hasBot) k = 'bot';
      else if (status === 'resolved' && j === count - 1) k = csat ? 'template' : 'activity';
      else if (status === 'resolved' && csat && j === count - 2) k = 'activity';
      else if (status === 'pending')
        k = rng.weighted([
          ['incoming', 55],
          ['bot', 40],
          ['activity', 5],
        ]);
      else
        k = rng.weighted([
          ['incoming', 42],
          ['agent', 30],
          ['bot', inbox.hasBot ? 8 : 0],
          ['note', 6],
          ['activity', 8],
          ['template', 2],
        ]);
      if (status === 'snoozed' && j === count - 1 && count > 2) k = 'activity';
      kinds.push(KIND_INDEX[k]);
    }
    const gaps: number[] = [0];
    let span = 0;
    for (let j = 1; j < count; j++) {
      const g = rng.chance(0.1) ? rng.int(2 * HOUR, 3 * DAY) : rng.int(3 * SECOND, 12 * MINUTE);
      gaps.push(g);
      span += g;
    }
    let t0 = startMs;
    const latest = now - 2 * MINUTE;
    if (t0 + span > latest) {
      const room = latest - t0;
      if (room < count * 30 * SECOND) t0 = latest - Math.max(span, count * 30 * SECOND);
      else {
        const f = room / span;
        for (let j = 1; j < count; j++) gaps[j] = Math.max(1, Math.floor((gaps[j] as number) * f));
      }
    }
    const times: number[] = [];
    let t = t0;
    for (let j = 0; j < count; j++) {
      t += gaps[j] as number;
      if (j > 0 && t <= (times[j - 1] as number)) t = (times[j - 1] as number) + 1;
      times.push(t);
    }
    if (contact.createdAtMs > t0) contact.createdAtMs = t0 - rng.int(1, 600) * SECOND;
    if (contact.updatedAtMs < contact.createdAtMs) contact.updatedAtMs = contact.createdAtMs;

    let ci = contact.inboxes.find((x) => x.inboxId === inbox.id);
    if (!ci) {
      ci = {
        id: this.nextContactInboxId++,
        inboxId: inbox.id,
        sourceId: this.sourceIdFor(contact, inbox, rng),
        createdAtMs: Math.min(contact.createdAtMs, t0),
        pubsubToken: rng.base58(24),
      };
      contact.inboxes.push(ci);
    }
    const assigned = status !== 'pending' && rng.chance(0.8);
    const labels = rng.chance(0.5) ? [rng.pick(account.labels)] : [];
    if (rng.chance(0.15)) {
      const l = rng.pick(account.labels);
      if (!labels.includes(l)) labels.push(l);
    }
    const additional: Record<string, unknown> =
      inbox.channelType === 'Channel::WebWidget'
        ? {
            browser: {
              device_name: 'Unknown',
              browser_name: 'Chrome',
              platform_name: 'macOS',
              browser_version: '131.0.0.0',
              platform_version: '10.15.7',
            },
            referer: 'https://clinic.example/book',
            initiated_at: { timestamp: new Date(t0).toString() },
            browser_language: 'en',
          }
        : inbox.channelType === 'Channel::Email'
          ? {
              mail_subject: rng.pick([
                'Appointment enquiry',
                'Invoice',
                'Re: your booking',
                'Question about my treatment',
              ]),
              source: 'email',
            }
          : {};
    const conv: CwConversation = {
      dbId,
      displayId: 0,
      accountId: account.id,
      uuid: rng.uuid(),
      inboxId: inbox.id,
      contactId: contact.id,
      contactInboxId: ci.id,
      assigneeId: assigned ? rng.pick(account.agents).id : null,
      teamId: rng.chance(0.5) ? rng.pick(account.teams).id : null,
      status,
      baseAssigneeId: null,
      baseFirstName: contact.name.split(' ')[0] ?? contact.name,
      baseStatus: status,
      priority: rng.chance(0.7) ? null : rng.pick(['low', 'medium', 'high', 'urgent'] as const),
      labels,
      createdAtMs: t0,
      updatedAtUs: 0,
      lastActivityAtMs: t0,
      snoozedUntilMs: status === 'snoozed' && rng.chance(0.7) ? now + rng.int(1, 5) * DAY : null,
      firstReplyCreatedAtMs: null,
      waitingSinceMs: null,
      agentLastSeenAtMs: null,
      assigneeLastSeenAtMs: null,
      contactLastSeenAtMs: null,
      additionalAttributes: additional,
      customAttributes: rng.chance(0.1) ? { booking_source: rng.pick(['instagram', 'google', 'referral']) } : {},
      seed,
      lang: contact.lang,
      baseStart: 0,
      baseCount: 0,
      extra: [],
      deleted: false,
    };
    conv.baseAssigneeId = conv.assigneeId;
    return { conv, kinds, times };
  }

  private sourceIdFor(contact: CwContact, inbox: CwInbox, rng: Rng): string {
    switch (inbox.channelType) {
      case 'Channel::Whatsapp':
        return (contact.phone ?? `+61400${rng.digits(6)}`).replace(/^\+/, '');
      case 'Channel::Email':
        return contact.email ?? `${rng.hex(8)}@mail.example`;
      default:
        return rng.uuid();
    }
  }

  /** Derives waiting_since, first reply, seen-at times, updated_at from the message sequence (init only). */
  private deriveConversation(conv: CwConversation): void {
    const rng = new Rng(conv.seed ^ 0x5bd1e995);
    let waiting: number | null = null;
    let firstReply: number | null = null;
    let updated = conv.createdAtMs;
    let lastAgent: number | null = null;
    let lastIncoming: number | null = null;
    for (let j = 0; j < conv.baseCount; j++) {
      const k = KIND_CODES[this.kinds[conv.baseStart + j] as number] as MsgKind;
      const t = this.times[conv.baseStart + j] as number;
      if (k === 'incoming') {
        lastIncoming = t;
        if (waiting === null) {
          waiting = t;
          updated = t;
        }
      } else if (k === 'agent') {
        lastAgent = t;
        if (firstReply === null) {
          firstReply = t;
          waiting = null;
          updated = t;
        } else if (waiting !== null) {
          waiting = null;
          updated = t;
        }
      } else if (k === 'activity') updated = t;
    }
    const last = this.times[conv.baseStart + conv.baseCount - 1] as number;
    const now = this.clock.nowMs;
    conv.lastActivityAtMs = last;
    conv.waitingSinceMs = waiting;
    conv.firstReplyCreatedAtMs = firstReply;
    conv.updatedAtUs = usFromMs(this.touchOnMessage ? Math.max(updated, last) : updated, rng);
    const seen = conv.status === 'open' && rng.chance(0.5) ? lastAgent : last;
    conv.agentLastSeenAtMs = seen === null ? null : Math.min(now, seen + rng.int(0, 30 * MINUTE));
    conv.assigneeLastSeenAtMs = conv.assigneeId === null ? null : conv.agentLastSeenAtMs;
    conv.contactLastSeenAtMs = lastIncoming === null ? null : Math.min(now, lastIncoming + rng.int(0, 5 * MINUTE));
  }

  // ------------------------------------------------------------------ reads

  /** Ids and times of every message of a conversation, ascending (cheap: no content built). */
  messageIndex(conv: CwConversation): Array<{ id: number; t: number; slot: number }> {
    const out: Array<{ id: number; t: number; slot: number }> = new Array(conv.baseCount + conv.extra.length);
    for (let j = 0; j < conv.baseCount; j++)
      out[j] = { id: this.ids[conv.baseStart + j] as number, t: this.times[conv.baseStart + j] as number, slot: j };
    conv.extra.forEach((m, i) => {
      out[conv.baseCount + i] = { id: m.id, t: m.createdAtMs, slot: conv.baseCount + i };
    });
    return out;
  }

  messageCount(conv: CwConversation): number {
    return conv.baseCount + conv.extra.length;
  }

  kindAt(conv: CwConversation, slot: number): MsgKind {
    if (slot < conv.baseCount) return KIND_CODES[this.kinds[conv.baseStart + slot] as number] as MsgKind;
    return (conv.extra[slot - conv.baseCount] as CwMessage).kind;
  }

  /** Builds (or returns) the message at `slot` (0-based position in the conversation), overrides applied. */
  messageAt(conv: CwConversation, slot: number): CwMessage {
    if (slot >= conv.baseCount) return conv.extra[slot - conv.baseCount] as CwMessage;
    const base = this.buildBaseMessage(conv, slot);
    const o = this.overrides.get(base.id);
    return o ? { ...base, ...o } : base;
  }

  /** The newest message matching `pred` (by kind and the built message), or null. */
  lastMessage(
    conv: CwConversation,
    pred: (m: CwMessage) => boolean,
    kindFilter?: (k: MsgKind) => boolean,
  ): CwMessage | null {
    for (let s = this.messageCount(conv) - 1; s >= 0; s--) {
      if (kindFilter && !kindFilter(this.kindAt(conv, s))) continue;
      const m = this.messageAt(conv, s);
      if (pred(m)) return m;
    }
    return null;
  }

  unreadCount(conv: CwConversation): number {
    const seen = conv.agentLastSeenAtMs ?? 0;
    let n = 0;
    for (let s = this.messageCount(conv) - 1; s >= 0; s--) {
      const t =
        s < conv.baseCount
          ? (this.times[conv.baseStart + s] as number)
          : (conv.extra[s - conv.baseCount] as CwMessage).createdAtMs;
      if (t <= seen) break;
      if (this.kindAt(conv, s) === 'incoming') n++;
    }
    return n;
  }

  private buildBaseMessage(conv: CwConversation, j: number): CwMessage {
    const account = this.accountsById.get(conv.accountId) as CwAccount;
    const inbox = account.inboxes.find((i) => i.id === conv.inboxId) as CwInbox;
    const contact = account.contactsById.get(conv.contactId) as CwContact;
    const idx = conv.baseStart + j;
    const id = this.ids[idx] as number;
    const t = this.times[idx] as number;
    const kind = KIND_CODES[this.kinds[idx] as number] as MsgKind;
    const rng = new Rng((conv.seed * 31 + j * 2654435761) >>> 0);
    return this.composeMessage({ account, inbox, contact, conv, id, t, kind, rng, now: this.genNowMs });
  }

  private composeMessage(a: {
    account: CwAccount;
    inbox: CwInbox;
    contact: CwContact;
    conv: CwConversation;
    id: number;
    t: number;
    kind: MsgKind;
    rng: Rng;
    now: number;
  }): CwMessage {
    const { account, inbox, contact, conv, id, t, kind, rng } = a;
    const first = conv.baseFirstName;
    const agent =
      conv.baseAssigneeId !== null && rng.chance(0.8)
        ? (account.agents.find((x) => x.id === conv.baseAssigneeId) as CwAgent)
        : rng.pick(account.agents);
    const wa = inbox.channelType === 'Channel::Whatsapp';
    const msg: CwMessage = {
      id,
      accountId: account.id,
      inboxId: inbox.id,
      convDbId: conv.dbId,
      displayId: conv.displayId,
      kind,
      content: null,
      contentType: 'text',
      contentAttributes: {},
      additionalAttributes: {},
      createdAtMs: t,
      updatedAtMs: t + (kind === 'agent' && wa ? rng.int(1000, 90_000) : rng.int(0, 300)),
      private: kind === 'note',
      status: 'sent',
      sourceId: null,
      senderType: null,
      senderId: null,
      attachments: [],
    };
    switch (kind) {
      case 'incoming': {
        msg.senderType = 'Contact';
        msg.senderId = contact.id;
        msg.content = incomingText(rng, conv.lang);
        if (wa) msg.sourceId = `wamid.HBgL${rng.base58(40)}`;
        if (inbox.channelType === 'Channel::Email') {
          msg.contentType = 'incoming_email';
          msg.sourceId = `<${rng.uuid()}@mail.gmail.com>`;
        }
        if (rng.chance(0.12)) {
          const type = rng.weighted([
            ['image', 60],
            ['audio', 20],
            ['file', 12],
            ['location', 5],
            ['video', 3],
          ] as const);
          msg.attachments.push(this.attachment(account.id, id, 0, type, rng, msg.content));
          if (type !== 'image' || rng.chance(0.5)) msg.content = null;
        }
        break;
      }
      case 'agent': {
        msg.senderType = 'User';
        msg.senderId = agent.id;
        msg.content = agentText(rng, first);
        if (wa) {
          msg.sourceId = `wamid.HBgL${rng.base58(40)}`;
          msg.status = a.now - t > 2 * HOUR ? 'read' : rng.pick(['delivered', 'read'] as const);
          if (rng.chance(0.02)) {
            msg.status = 'failed';
            msg.sourceId = null;
            msg.contentAttributes = {
              external_error:
                '131047: Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
            };
          }
        }
        if (rng.chance(0.08))
          msg.attachments.push(this.attachment(account.id, id, 0, rng.pick(['file', 'image'] as const), rng, null));
        break;
      }
      case 'bot': {
        msg.senderType = 'AgentBot';
        msg.senderId = account.bot.id;
        msg.content = botText(rng);
        if (wa) {
          msg.sourceId = `wamid.HBgL${rng.base58(40)}`;
          msg.status = 'delivered';
        }
        break;
      }
      case 'note': {
        msg.senderType = 'User';
        msg.senderId = agent.id;
        msg.content = noteText(rng);
        break;
      }
      case 'activity': {
        const other = rng.pick(account.agents);
        const resolvedEnd =
          conv.baseStatus === 'resolved' && (id === this.lastBaseId(conv) || id === this.lastBaseId(conv, 1));
        msg.content = resolvedEnd
          ? `Conversation was marked resolved by ${agent.name}`
          : rng.weighted([
              [`Assigned to ${agent.name} by ${other.name}`, 3],
              [`${other.name} added ${rng.pick(account.labels)}`, 2],
              [`Conversation was reopened by ${other.name}`, 1],
              [`Conversation was snoozed by ${other.name}`, 1],
              [`${other.name} self-assigned this conversation`, 1],
            ]);
        break;
      }
      case 'template': {
        if (conv.baseStatus === 'resolved' && id === this.lastBaseId(conv)) {
          msg.contentType = 'input_csat';
          msg.content = 'Please rate this conversation';
        } else {
          msg.content = templateText(rng, first, account.name);
          if (wa) {
            msg.sourceId = `wamid.HBgL${rng.base58(40)}`;
            msg.status = 'read';
            msg.additionalAttributes = {
              template_params: { name: 'appointment_reminder', category: 'UTILITY', language: 'en' },
            };
            // An agent writing first, or after the 24-hour window, must send a template: the message's sender is
            // that agent (a User). Campaign templates have no sender. Drawn last: earlier draws stay as they were.
            if (rng.chance(0.5)) {
              msg.senderType = 'User';
              msg.senderId = agent.id;
            }
          }
        }
        break;
      }
    }
    return msg;
  }

  private lastBaseId(conv: CwConversation, back = 0): number {
    return this.ids[conv.baseStart + conv.baseCount - 1 - back] as number;
  }

  private attachment(
    accountId: number,
    messageId: number,
    k: number,
    type: CwAttachment['fileType'],
    rng: Rng,
    text: string | null,
  ): CwAttachment {
    const id = messageId * 3 + k;
    switch (type) {
      case 'image': {
        const ext = rng.pick(['jpg', 'png', 'jpeg']);
        return {
          id,
          messageId,
          accountId,
          fileType: 'image',
          extension: ext,
          fileName: `IMG_${rng.digits(4)}.${ext}`,
          fileSize: rng.int(40_000, 3_500_000),
          width: rng.pick([1080, 1280, 1600]),
          height: rng.pick([1920, 960, 1200]),
        };
      }
      case 'audio':
        return {
          id,
          messageId,
          accountId,
          fileType: 'audio',
          extension: 'ogg',
          fileName: `voice-note-${rng.hex(6)}.ogg`,
          fileSize: rng.int(8_000, 400_000),
          width: null,
          height: null,
          transcribedText: text ?? '',
        };
      case 'video':
        return {
          id,
          messageId,
          accountId,
          fileType: 'video',
          extension: 'mp4',
          fileName: `VID_${rng.digits(4)}.mp4`,
          fileSize: rng.int(900_000, 15_000_000),
          width: 720,
          height: 1280,
        };
      case 'file': {
        const name = rng.pick([
          'referral-letter.pdf',
          'invoice.pdf',
          'exercise-sheet.pdf',
          'mri-report.pdf',
          'health-fund-claim.docx',
        ]);
        return {
          id,
          messageId,
          accountId,
          fileType: 'file',
          extension: name.split('.').pop() ?? null,
          fileName: name,
          fileSize: rng.int(20_000, 2_000_000),
          width: null,
          height: null,
        };
      }
      case 'location':
        return {
          id,
          messageId,
          accountId,
          fileType: 'location',
          extension: null,
          fileName: '',
          fileSize: 0,
          width: null,
          height: null,
          lat: -8.65 + rng.next() / 20,
          long: 115.13 + rng.next() / 20,
          fallbackTitle: rng.pick(['Canggu', 'Echo Beach', 'Berawa']),
        };
    }
  }

  /** Resolved contacts: what /contacts and /contacts/search may show. */
  static isResolved(c: CwContact): boolean {
    return Boolean(c.email) || Boolean(c.phone) || Boolean(c.identifier);
  }

  // ------------------------------------------------------------------ mutation

  mutate(steps = 1): ChatwootMutationSummary {
    const actions: ChatwootMutationAction[] = [];
    for (let s = 0; s < steps; s++) {
      this.stepNo += 1;
      const rng = rngFor(this.seed, 'cw-mutate', this.stepNo);
      const from = this.clock.nowMs;
      this.clock.advance(rng.int(30, 300) * SECOND);
      actions.push(...this.runScheduledJobs(from, this.clock.nowMs));
      for (const account of this.accounts) {
        const n = rng.int(1, 3) + Math.floor(Math.log10(Math.max(1, this.scale)));
        for (let i = 0; i < n; i++) {
          const a = this.mutateOnce(account, rng);
          if (a) actions.push(a);
        }
      }
    }
    const counts: Record<string, number> = {};
    for (const a of actions) counts[a.type] = (counts[a.type] ?? 0) + 1;
    return { step: this.stepNo, at: new Date(this.clock.nowMs).toISOString(), actions, counts };
  }

  /**
   * Moves the clock forward by `ms`, running the scheduled jobs that fall due on the way (a platform left alone
   * for a while). Returns what the jobs changed.
   */
  advance(ms: number): ChatwootMutationAction[] {
    const from = this.clock.nowMs;
    const to = from + Math.max(1, Math.floor(ms));
    const actions = this.runScheduledJobs(from, to);
    this.clock.nowMs = Math.max(this.clock.nowMs, to);
    return actions;
  }

  /**
   * `TriggerScheduledItemsJob` (cron every 5 minutes) → `Conversations::ReopenSnoozedConversationsJob`:
   * `Conversation.where(status: :snoozed).where(snoozed_until: 3.days.ago..Time.current).each(&:open!)` for every
   * run in (from, to]. `open!` resets snoozed_until, bumps updated_at and dispatches conversation_status_changed
   * and conversation_updated; no activity message is created (no Current.user, not resolved), so
   * last_activity_at does not move. Snoozed "until next reply" (snoozed_until null) is never reopened here.
   */
  private runScheduledJobs(from: number, to: number): ChatwootMutationAction[] {
    const due: Array<{ at: number; account: CwAccount; conv: CwConversation }> = [];
    for (const account of this.accounts) {
      for (const conv of account.conversations) {
        if (conv.deleted || conv.status !== 'snoozed' || conv.snoozedUntilMs === null) continue;
        // The first job run after `from` that finds snoozed_until in its 3-day window.
        const first = Math.max(conv.snoozedUntilMs, from + 1);
        const at = Math.ceil(first / JOB_EVERY_MS) * JOB_EVERY_MS;
        if (at <= to && at - conv.snoozedUntilMs <= 3 * DAY) due.push({ at, account, conv });
      }
    }
    due.sort((a, b) => a.at - b.at || a.account.id - b.account.id || a.conv.displayId - b.conv.displayId);
    const actions: ChatwootMutationAction[] = [];
    for (const d of due) {
      const rng = rngFor(this.seed, 'cw-reopen-snoozed', d.conv.dbId, d.at);
      this.setStatus(d.account, d.conv, 'open', d.at, rng);
      actions.push({
        type: 'conversation_reopened',
        accountId: d.account.id,
        conversationId: d.conv.displayId,
        detail: 'snooze expired',
      });
    }
    return actions;
  }

  private tick(rng: Rng): number {
    return this.clock.advance(rng.int(200, 20_000));
  }

  private emit(e: CwEvent): void {
    this.listener?.(e);
  }

  private liveConversations(account: CwAccount): CwConversation[] {
    return account.conversations.filter((c) => !c.deleted);
  }

  private touchContact(c: CwContact): void {
    c.heapSeq = this.heapSeq++;
  }

  private bumpConv(conv: CwConversation, t: number, rng: Rng): { previous: number; current: number } {
    const previous = conv.updatedAtUs;
    conv.updatedAtUs = Math.max(usFromMs(t, rng), previous + 1);
    return { previous, current: conv.updatedAtUs };
  }

  private mutateOnce(account: CwAccount, rng: Rng): ChatwootMutationAction | null {
    const kind = rng.weighted([
      ['incoming', 30],
      ['reply', 20],
      ['new_conversation', 10],
      ['status', 12],
      ['edit', 6],
      ['delete_message', 4],
      ['contact_edit', 8],
      ['assign', 5],
      ['delete_conversation', 1],
      ['delete_contact', 0.5],
    ] as const);
    const convs = this.liveConversations(account);
    if (convs.length === 0 && kind !== 'new_conversation') return this.newConversation(account, rng);
    switch (kind) {
      case 'incoming': {
        const open = convs.filter((c) => c.status !== 'resolved');
        const conv = open.length > 0 && rng.chance(0.8) ? rng.pick(open) : rng.pick(convs);
        return this.addIncoming(account, conv, rng);
      }
      case 'reply': {
        const open = convs.filter((c) => c.status === 'open' || c.status === 'pending');
        if (open.length === 0) return this.addIncoming(account, rng.pick(convs), rng);
        return this.addReply(account, rng.pick(open), rng);
      }
      case 'new_conversation':
        return this.newConversation(account, rng);
      case 'status':
        return this.changeStatus(account, rng.pick(convs), rng);
      case 'edit':
        return this.editMessage(account, rng.pick(convs), rng, false);
      case 'delete_message':
        return this.editMessage(account, rng.pick(convs), rng, true);
      case 'contact_edit': {
        const live = account.contacts.filter((c) => !c.deleted);
        return this.editContact(account, rng.pick(live), rng);
      }
      case 'assign':
        return this.assign(account, rng.pick(convs), rng);
      case 'delete_conversation': {
        const conv = rng.pick(convs);
        conv.deleted = true;
        return { type: 'conversation_deleted', accountId: account.id, conversationId: conv.displayId };
      }
      case 'delete_contact': {
        const live = account.contacts.filter((c) => !c.deleted);
        const c = rng.pick(live);
        c.deleted = true;
        for (const cv of account.conversations) if (cv.contactId === c.id) cv.deleted = true;
        return { type: 'contact_deleted', accountId: account.id, contactId: c.id };
      }
    }
  }

  private appendMessage(account: CwAccount, conv: CwConversation, kind: MsgKind, rng: Rng, t: number): CwMessage {
    const inbox = account.inboxes.find((i) => i.id === conv.inboxId) as CwInbox;
    const contact = account.contactsById.get(conv.contactId) as CwContact;
    const id = this.nextMsgId++;
    const m = this.composeMessage({ account, inbox, contact, conv, id, t, kind, rng, now: t });
    m.updatedAtMs = t;
    if (m.status === 'read') m.status = 'sent';
    conv.extra.push(m);
    if (this.touchOnMessage) conv.updatedAtUs = Math.max(usFromMs(t, rng), conv.updatedAtUs + 1);
    return m;
  }

  private setStatus(account: CwAccount, conv: CwConversation, status: ConvStatus, t: number, rng: Rng): void {
    if (conv.status === status) return;
    const prev = conv.status;
    conv.status = status;
    if (status !== 'snoozed') conv.snoozedUntilMs = null;
    const upd = this.bumpConv(conv, t, rng);
    const changed: ChangedAttributes = [
      { status: { previous_value: prev, current_value: status } },
      { updated_at: { previous_value: upd.previous, current_value: upd.current } },
    ];
    this.emit({ event: 'conversation_status_changed', account, conversation: conv, changed });
    this.emit({ event: 'conversation_updated', account, conversation: conv, changed });
  }

  private addIncoming(account: CwAccount, conv: CwConversation, rng: Rng): ChatwootMutationAction {
    const t = this.tick(rng);
    // reopen_conversation runs before the message's create events
    if (conv.status === 'snoozed') this.setStatus(account, conv, 'open', t, rng);
    if (conv.status === 'resolved') {
      const inbox = account.inboxes.find((i) => i.id === conv.inboxId) as CwInbox;
      this.setStatus(account, conv, inbox.hasBot ? 'pending' : 'open', t, rng);
    }
    const m = this.appendMessage(account, conv, 'incoming', rng, t);
    conv.lastActivityAtMs = t;
    this.emit({ event: 'message_created', account, message: m });
    if (conv.waitingSinceMs === null) {
      conv.waitingSinceMs = t;
      const upd = this.bumpConv(conv, t, rng);
      this.emit({
        event: 'conversation_updated',
        account,
        conversation: conv,
        changed: [
          { waiting_since: { previous_value: null, current_value: new Date(t).toISOString() } },
          { updated_at: { previous_value: upd.previous, current_value: upd.current } },
        ],
      });
    }
    const contact = account.contactsById.get(conv.contactId) as CwContact;
    const prev = contact.lastActivityAtMs;
    contact.lastActivityAtMs = t;
    contact.updatedAtMs = t;
    this.touchContact(contact);
    this.emit({
      event: 'contact_updated',
      account,
      contact,
      changed: [
        {
          last_activity_at: {
            previous_value: prev === null ? null : new Date(prev).toISOString(),
            current_value: new Date(t).toISOString(),
          },
        },
      ],
    });
    return { type: 'message_incoming', accountId: account.id, conversationId: conv.displayId, messageId: m.id };
  }

  private addReply(account: CwAccount, conv: CwConversation, rng: Rng): ChatwootMutationAction {
    const t = this.tick(rng);
    const kind: MsgKind =
      conv.status === 'pending'
        ? 'bot'
        : rng.weighted([
            ['agent', 75],
            ['note', 15],
            ['bot', 10],
          ]);
    const m = this.appendMessage(account, conv, kind, rng, t);
    conv.lastActivityAtMs = t;
    this.emit({ event: 'message_created', account, message: m });
    if (kind === 'agent') {
      const changed: ChangedAttributes = [];
      if (conv.firstReplyCreatedAtMs === null) {
        conv.firstReplyCreatedAtMs = t;
        changed.push({ first_reply_created_at: { previous_value: null, current_value: new Date(t).toISOString() } });
      }
      if (conv.waitingSinceMs !== null) {
        changed.push({
          waiting_since: { previous_value: new Date(conv.waitingSinceMs).toISOString(), current_value: null },
        });
        conv.waitingSinceMs = null;
      }
      conv.agentLastSeenAtMs = t;
      if (conv.assigneeId !== null) conv.assigneeLastSeenAtMs = t;
      if (changed.length > 0) {
        const upd = this.bumpConv(conv, t, rng);
        changed.push({ updated_at: { previous_value: upd.previous, current_value: upd.current } });
        this.emit({ event: 'conversation_updated', account, conversation: conv, changed });
      }
    }
    return {
      type: 'message_reply',
      accountId: account.id,
      conversationId: conv.displayId,
      messageId: m.id,
      detail: kind,
    };
  }

  private newConversation(account: CwAccount, rng: Rng): ChatwootMutationAction {
    const t = this.tick(rng);
    let contact: CwContact;
    const live = account.contacts.filter((c) => !c.deleted);
    let inbox: CwInbox;
    if (live.length > 0 && rng.chance(0.5)) {
      contact = rng.pick(live);
      const ci = contact.inboxes[0];
      inbox = (account.inboxes.find((i) => i.id === ci?.inboxId) ?? account.inboxes[0]) as CwInbox;
    } else {
      const anonymous = rng.chance(0.3);
      const phone = anonymous ? null : `+614${rng.digits(8)}`;
      contact = {
        id: this.nextContactId++,
        accountId: account.id,
        name: anonymous ? haikuName(rng) : (phone ?? ''),
        email: null,
        phone,
        identifier: null,
        customAttributes: {},
        additionalAttributes: {},
        createdAtMs: t,
        updatedAtMs: t,
        lastActivityAtMs: null,
        blocked: false,
        inboxes: [],
        heapSeq: this.heapSeq++,
        deleted: false,
        personIdx: null,
        lang: 'en',
      };
      if (!anonymous && rng.chance(0.7))
        contact.name = rng.pick(['Sam', 'Alex', 'Jordan 🌊', 'Kiri', 'Ana Lúcia', 'Bec']);
      account.contacts.push(contact);
      account.contactsById.set(contact.id, contact);
      inbox = (anonymous ? account.inboxes[1] : account.inboxes[0]) as CwInbox;
      this.emit({ event: 'contact_created', account, contact });
    }
    let ci = contact.inboxes.find((x) => x.inboxId === inbox.id);
    if (!ci) {
      ci = {
        id: this.nextContactInboxId++,
        inboxId: inbox.id,
        sourceId: this.sourceIdFor(contact, inbox, rng),
        createdAtMs: t,
        pubsubToken: rng.base58(24),
      };
      contact.inboxes.push(ci);
    }
    const conv: CwConversation = {
      dbId: this.nextConvDbId++,
      displayId: account.conversations.length + 1,
      accountId: account.id,
      uuid: rng.uuid(),
      inboxId: inbox.id,
      contactId: contact.id,
      contactInboxId: ci.id,
      assigneeId: null,
      teamId: null,
      status: inbox.hasBot ? 'pending' : 'open',
      baseAssigneeId: null,
      baseFirstName: contact.name.split(' ')[0] ?? contact.name,
      baseStatus: inbox.hasBot ? 'pending' : 'open',
      priority: null,
      labels: [],
      createdAtMs: t,
      updatedAtUs: usFromMs(t, rng),
      lastActivityAtMs: t,
      snoozedUntilMs: null,
      firstReplyCreatedAtMs: null,
      waitingSinceMs: null,
      agentLastSeenAtMs: null,
      assigneeLastSeenAtMs: null,
      contactLastSeenAtMs: t,
      additionalAttributes: {},
      customAttributes: {},
      seed: rng.int(1, 2 ** 31 - 1),
      lang: contact.lang,
      baseStart: 0,
      baseCount: 0,
      extra: [],
      deleted: false,
    };
    conv.baseAssigneeId = conv.assigneeId;
    account.conversations.push(conv);
    this.convByDbId.set(conv.dbId, conv);
    this.emit({ event: 'conversation_created', account, conversation: conv });
    const m = this.appendMessage(account, conv, 'incoming', rng, t);
    this.emit({ event: 'message_created', account, message: m });
    conv.waitingSinceMs = t;
    const upd = this.bumpConv(conv, t, rng);
    this.emit({
      event: 'conversation_updated',
      account,
      conversation: conv,
      changed: [
        { waiting_since: { previous_value: null, current_value: new Date(t).toISOString() } },
        { updated_at: { previous_value: upd.previous, current_value: upd.current } },
      ],
    });
    const prev = contact.lastActivityAtMs;
    contact.lastActivityAtMs = t;
    contact.updatedAtMs = t;
    this.touchContact(contact);
    this.emit({
      event: 'contact_updated',
      account,
      contact,
      changed: [
        {
          last_activity_at: {
            previous_value: prev === null ? null : new Date(prev).toISOString(),
            current_value: new Date(t).toISOString(),
          },
        },
      ],
    });
    return {
      type: 'conversation_created',
      accountId: account.id,
      conversationId: conv.displayId,
      contactId: contact.id,
      messageId: m.id,
    };
  }

  private changeStatus(account: CwAccount, conv: CwConversation, rng: Rng): ChatwootMutationAction {
    const t = this.tick(rng);
    const next: ConvStatus =
      conv.status === 'open'
        ? rng.weighted([
            ['resolved', 70],
            ['snoozed', 20],
            ['pending', 10],
          ])
        : conv.status === 'resolved'
          ? 'open'
          : rng.weighted([
              ['open', 60],
              ['resolved', 40],
            ]);
    const account0 = account.agents[0] as CwAgent;
    this.setStatus(account, conv, next, t, rng);
    if (next === 'snoozed') conv.snoozedUntilMs = t + rng.int(1, 4) * DAY;
    const verb = { open: 'reopened', resolved: 'marked resolved', pending: 'marked pending', snoozed: 'snoozed' }[next];
    const act = this.appendMessage(account, conv, 'activity', rng, t + 1);
    act.content = `Conversation was ${verb} by ${account0.name}`;
    conv.lastActivityAtMs = t + 1;
    return { type: 'conversation_status', accountId: account.id, conversationId: conv.displayId, detail: next };
  }

  private assign(account: CwAccount, conv: CwConversation, rng: Rng): ChatwootMutationAction {
    const t = this.tick(rng);
    const agent = rng.pick(account.agents);
    const prev = conv.assigneeId;
    if (prev === agent.id) {
      const label = rng.pick(account.labels);
      if (conv.labels.includes(label))
        return { type: 'conversation_assigned', accountId: account.id, conversationId: conv.displayId, detail: 'noop' };
      const before = [...conv.labels];
      conv.labels.push(label);
      const upd = this.bumpConv(conv, t, rng);
      this.emit({
        event: 'conversation_updated',
        account,
        conversation: conv,
        changed: [
          { label_list: { previous_value: before, current_value: [...conv.labels] } },
          { updated_at: { previous_value: upd.previous, current_value: upd.current } },
        ],
      });
      return {
        type: 'conversation_assigned',
        accountId: account.id,
        conversationId: conv.displayId,
        detail: `label:${label}`,
      };
    }
    conv.assigneeId = agent.id;
    const upd = this.bumpConv(conv, t, rng);
    this.emit({
      event: 'conversation_updated',
      account,
      conversation: conv,
      changed: [
        { assignee_id: { previous_value: prev, current_value: agent.id } },
        { updated_at: { previous_value: upd.previous, current_value: upd.current } },
      ],
    });
    const act = this.appendMessage(account, conv, 'activity', rng, t + 1);
    act.content = `Assigned to ${agent.name} by ${(account.agents[0] as CwAgent).name}`;
    conv.lastActivityAtMs = t + 1;
    return {
      type: 'conversation_assigned',
      accountId: account.id,
      conversationId: conv.displayId,
      detail: `agent:${agent.id}`,
    };
  }

  private editMessage(account: CwAccount, conv: CwConversation, rng: Rng, del: boolean): ChatwootMutationAction | null {
    const count = this.messageCount(conv);
    // pick a recent-ish non-activity message
    for (let tries = 0; tries < 8; tries++) {
      const slot = Math.max(0, count - 1 - Math.floor(rng.exp(6)));
      const kind = this.kindAt(conv, slot);
      if (kind === 'activity') continue;
      const m = this.messageAt(conv, slot);
      if (m.contentAttributes.deleted === true) continue;
      const t = this.tick(rng);
      let patch: Partial<CwMessage>;
      let type: ChatwootMutationAction['type'];
      if (del) {
        patch = {
          content: DELETED_MESSAGE_CONTENT,
          contentType: 'text',
          contentAttributes: { deleted: true },
          attachments: [],
          updatedAtMs: t,
        };
        type = 'message_deleted';
      } else if ((kind === 'agent' || kind === 'bot') && (m.status === 'sent' || m.status === 'delivered')) {
        patch = { status: m.status === 'sent' ? 'delivered' : 'read', updatedAtMs: t };
        type = 'message_status';
      } else {
        if (m.content === null) continue;
        patch = { content: editedText(rng, m.content), updatedAtMs: t };
        type = 'message_edited';
      }
      if (slot >= conv.baseCount) Object.assign(conv.extra[slot - conv.baseCount] as CwMessage, patch);
      else this.overrides.set(m.id, { ...(this.overrides.get(m.id) ?? {}), ...patch });
      const updated = this.messageAt(conv, slot);
      if (updated.kind !== 'activity') this.emit({ event: 'message_updated', account, message: updated });
      return { type, accountId: account.id, conversationId: conv.displayId, messageId: m.id };
    }
    return null;
  }

  private editContact(account: CwAccount, contact: CwContact, rng: Rng): ChatwootMutationAction {
    const t = this.tick(rng);
    const changed: ChangedAttributes = [];
    const what = rng.weighted([
      ['name', 3],
      ['email', 3],
      ['phone', 1],
      ['custom', 3],
    ] as const);
    if (what === 'name') {
      const person = contact.personIdx !== null ? account.people[contact.personIdx] : undefined;
      const next = person
        ? `${person.firstName} ${person.lastName}`
        : `${contact.name.split(' ')[0]} ${rng.pick(['Smith', 'García', 'Ngata'])}`;
      changed.push({ name: { previous_value: contact.name, current_value: next } });
      contact.name = next;
    } else if (what === 'email') {
      const person = contact.personIdx !== null ? account.people[contact.personIdx] : undefined;
      const next = (
        person?.email ??
        `${
          contact.name
            .split(' ')[0]
            ?.toLowerCase()
            .replace(/[^a-z]/g, '') || 'guest'
        }${rng.int(1, 99)}@gmail.com`
      ).toLowerCase();
      const taken = account.contacts.some((c) => c !== contact && c.email === next);
      if (!taken && next !== contact.email) {
        changed.push({ email: { previous_value: contact.email, current_value: next } });
        contact.email = next;
      }
    } else if (what === 'phone') {
      const next = `+614${rng.digits(8)}`;
      if (!account.contacts.some((c) => c.phone === next)) {
        changed.push({ phone_number: { previous_value: contact.phone, current_value: next } });
        contact.phone = next;
      }
    }
    if (changed.length === 0 || what === 'custom') {
      const before = { ...contact.customAttributes };
      const person = contact.personIdx !== null ? account.people[contact.personIdx] : undefined;
      if (person?.onCliniko && contact.customAttributes.cliniko_patient_id === undefined)
        contact.customAttributes.cliniko_patient_id = person.clinikoId;
      else contact.customAttributes.last_campaign = rng.pick(['winter-promo', 'reactivation', 'newsletter']);
      changed.push({ custom_attributes: { previous_value: before, current_value: { ...contact.customAttributes } } });
    }
    changed.push({
      updated_at: {
        previous_value: new Date(contact.updatedAtMs).toISOString(),
        current_value: new Date(t).toISOString(),
      },
    });
    contact.updatedAtMs = t;
    this.touchContact(contact);
    this.emit({ event: 'contact_updated', account, contact, changed });
    return { type: 'contact_updated', accountId: account.id, contactId: contact.id, detail: what };
  }

  // ------------------------------------------------------------------ writes from the REST API

  conversationByDisplayId(account: CwAccount, displayId: number): CwConversation | undefined {
    const c = account.conversations[displayId - 1];
    return c && !c.deleted ? c : undefined;
  }
}
