/**
 * ManyChat ground truth: pages with custom fields, tags and subscribers. There is no list endpoint
 * and no history in the real API, so the model only holds what getInfo can show.
 */
import { generatePeople, type Person, randomPhone, type TenantProfile, tenantProfile } from '../common/people.ts';
import { type Rng, rngFor } from '../common/prng.ts';
import { incomingText } from '../common/text.ts';
import { DAY, HOUR, MINUTE, SECOND, SimClock } from '../common/time.ts';

export interface ManyChatPageConfig {
  /** Facebook page id (numeric string), also the token prefix. */
  pageId: string;
  /** `<page_id>:<32 hex>`. */
  token: string;
  name?: string;
}

export type McFieldType = 'text' | 'number' | 'date' | 'datetime' | 'boolean';

export interface McField {
  id: number;
  name: string;
  type: McFieldType;
  description: string;
}

export interface McTag {
  id: number;
  name: string;
}

export interface McSubscriber {
  id: string;
  channel: 'whatsapp' | 'instagram' | 'messenger';
  status: 'active';
  firstName: string;
  lastName: string;
  gender: 'male' | 'female' | null;
  profilePic: string | null;
  locale: string;
  language: string;
  timezone: string;
  lastInputText: string | null;
  optinPhone: boolean;
  phone: string | null;
  optinEmail: boolean;
  email: string | null;
  subscribedMs: number;
  lastInteractionMs: number | null;
  lastSeenMs: number | null;
  igLastInteractionMs: number | null;
  igLastSeenMs: number | null;
  isFollowupEnabled: boolean;
  igUsername: string | null;
  igId: number | null;
  whatsappPhone: string | null;
  optinWhatsapp: boolean;
  customFields: Map<number, { value: string | number | boolean | null; updatedAtMs: number }>;
  tags: number[];
  lastGrowthTool: { id: number; name: string; type: string } | null;
  personIdx: number | null;
  /** sendFlow timestamps within the last hour (per-subscriber cap). */
  flowSends: number[];
}

export interface McPage {
  index: number;
  pageId: string;
  token: string;
  name: string;
  profile: TenantProfile;
  offsetMinutes: number;
  fields: McField[];
  tags: McTag[];
  botFields: Array<McField & { value: string | number | boolean | null }>;
  flows: Array<{ ns: string; name: string; folder_id: number }>;
  subscribers: McSubscriber[];
  byId: Map<string, McSubscriber>;
  people: Person[];
  nextFieldId: number;
  nextTagId: number;
  sent: Array<{ subscriberId: string; kind: 'content' | 'flow'; at: number; payload: unknown }>;
}

export interface ManyChatMutationAction {
  type:
    | 'inbound_message'
    | 'subscriber_created'
    | 'custom_field_set'
    | 'tag_added'
    | 'tag_removed'
    | 'subscriber_updated';
  pageId: string;
  subscriberId: string;
  detail?: string;
}

export interface ManyChatMutationSummary {
  step: number;
  at: string;
  actions: ManyChatMutationAction[];
  counts: Record<string, number>;
}

const TZ_BY_COUNTRY: Record<string, string[]> = {
  AU: ['UTC+10', 'UTC+11'],
  NZ: ['UTC+13'],
  UK: ['UTC±00'],
  US: ['UTC-07', 'UTC-05'],
  ID: ['UTC+08'],
};

export function validTokenFormat(token: string): boolean {
  return /^\d+:[0-9a-f]{32}$/.test(token);
}

export class ManyChatModel {
  readonly seed: number;
  readonly scale: number;
  readonly clock: SimClock;
  readonly pages: McPage[] = [];
  private stepNo = 0;
  /** Called for inbound messages created by mutate(), so the sim can fire External Requests. */
  onInbound: ((page: McPage, sub: McSubscriber) => void) | undefined;

  constructor(opts: { seed: number; scale: number; nowMs: number; pages: ManyChatPageConfig[] }) {
    this.seed = opts.seed;
    this.scale = opts.scale;
    this.clock = new SimClock(opts.nowMs);
    const seen = new Set<string>();
    opts.pages.forEach((p, i) => {
      if (!validTokenFormat(p.token))
        throw new Error(`ManyChat token must look like "<page_id>:<32 hex>", got ${p.token}`);
      if (!p.token.startsWith(`${p.pageId}:`))
        throw new Error(`ManyChat token ${p.token} does not belong to page ${p.pageId}`);
      if (seen.has(p.pageId)) throw new Error(`duplicate ManyChat pageId ${p.pageId}`);
      seen.add(p.pageId);
      this.pages.push(this.generate(i, p));
    });
  }

  get steps(): number {
    return this.stepNo;
  }

  page(pageId: string): McPage | undefined {
    return this.pages.find((p) => p.pageId === pageId);
  }

  private generate(index: number, cfg: ManyChatPageConfig): McPage {
    const now = this.clock.nowMs;
    const profile = tenantProfile(index);
    const rng = rngFor(this.seed, 'mc-page', index);
    const people = generatePeople(this.seed, index, Math.max(8, Math.round(40 * this.scale)), now);
    const base = 8_000_000 + index * 10_000;
    const fields: McField[] = [
      {
        id: base + 1,
        name: 'cliniko_patient_id',
        type: 'text',
        description: 'Cliniko patient id (set by the booking flow)',
      },
      { id: base + 2, name: 'Preferred clinic', type: 'text', description: '' },
      { id: base + 3, name: 'Visits', type: 'number', description: 'Number of visits' },
      { id: base + 4, name: 'Birthday', type: 'date', description: '' },
      { id: base + 5, name: 'Last booking', type: 'datetime', description: 'Last booking request' },
      { id: base + 6, name: 'VIP', type: 'boolean', description: '' },
      { id: base + 7, name: 'Injury', type: 'text', description: 'What the contact said hurts' },
    ];
    const tags: McTag[] = ['lead', 'booked', 'vip', 'no-show', 'newsletter'].map((name, i) => ({
      id: base + 100 + i,
      name,
    }));
    const page: McPage = {
      index,
      pageId: cfg.pageId,
      token: cfg.token,
      name: cfg.name ?? profile.name,
      profile,
      offsetMinutes: profile.utcOffsetMinutes,
      fields,
      tags,
      botFields: [
        { id: base + 50, name: 'clinic_open', type: 'boolean', description: 'Set by the front desk', value: true },
      ],
      flows: [
        { ns: `content20240101${rng.digits(6)}_${rng.digits(6)}`, name: 'Booking request', folder_id: 0 },
        { ns: `content20240315${rng.digits(6)}_${rng.digits(6)}`, name: 'Appointment reminder', folder_id: 0 },
        { ns: `content20240802${rng.digits(6)}_${rng.digits(6)}`, name: 'Post-visit check-in', folder_id: 0 },
      ],
      subscribers: [],
      byId: new Map(),
      people,
      nextFieldId: base + 20,
      nextTagId: base + 200,
      sent: [],
    };
    for (const p of people) {
      if (!p.onManyChat) continue;
      const sub = this.subscriberFromPerson(page, p, rngFor(this.seed, 'mc-sub', index, p.idx));
      page.subscribers.push(sub);
      page.byId.set(sub.id, sub);
    }
    return page;
  }

  private newId(page: McPage, rng: Rng): string {
    let id = String(rng.int(1_000_000_000, 2_147_483_000));
    while (page.byId.has(id)) id = String(Number(id) + 1);
    return id;
  }

  private subscriberFromPerson(page: McPage, p: Person, rng: Rng): McSubscriber {
    const now = this.clock.nowMs;
    const channel: McSubscriber['channel'] =
      p.mobile && rng.chance(0.75) ? 'whatsapp' : rng.chance(0.7) ? 'instagram' : 'messenger';
    const subscribed = Math.min(now - HOUR, p.firstSeenMs + rng.int(0, 20) * DAY);
    const lastInteraction = Math.min(now - MINUTE, subscribed + Math.floor(rng.next() * (now - subscribed)));
    const wa = channel === 'whatsapp';
    const sub: McSubscriber = {
      id: this.newId(page, rng),
      channel,
      status: 'active',
      firstName: p.firstName,
      lastName: rng.chance(0.8) ? p.lastName : '',
      gender: channel === 'messenger' ? (p.sex === 'Female' ? 'female' : 'male') : null,
      profilePic:
        channel === 'whatsapp'
          ? null
          : `https://manybot-thumbnails.s3.eu-central-1.amazonaws.com/${page.pageId}/${rng.hex(16)}.jpg`,
      locale: p.country === 'ID' ? 'id_ID' : p.country === 'US' ? 'en_US' : 'en_GB',
      language: p.country === 'ID' ? 'Indonesian' : 'English',
      timezone: rng.pick(TZ_BY_COUNTRY[p.country] ?? ['UTC±00']),
      lastInputText: rng.chance(0.85) ? incomingText(rng, p.country === 'ID' ? 'id' : 'en') : null,
      optinPhone: false,
      phone: null,
      optinEmail: false,
      email: null,
      subscribedMs: subscribed,
      lastInteractionMs: lastInteraction,
      lastSeenMs: Math.min(now - SECOND, lastInteraction + rng.int(0, 600) * SECOND),
      igLastInteractionMs: channel === 'instagram' ? lastInteraction : null,
      igLastSeenMs: channel === 'instagram' ? lastInteraction : null,
      isFollowupEnabled: true,
      igUsername:
        channel === 'instagram'
          ? `${p.firstName
              .toLowerCase()
              .normalize('NFD')
              .replace(/[^a-z]/g, '')}.${rng.pick(['surfs', 'moves', 'rehab', 'lifts'])}${rng.int(1, 99)}`
          : null,
      igId: channel === 'instagram' ? rng.int(1_000_000_000, 2_000_000_000) * 1000 + rng.int(0, 999) : null,
      whatsappPhone: wa && p.mobile ? p.mobile.e164 : null,
      optinWhatsapp: wa,
      customFields: new Map(),
      tags: [],
      lastGrowthTool: rng.chance(0.4) ? { id: 42, name: 'Instagram bio link', type: 'ref_url' } : null,
      personIdx: p.idx,
      flowSends: [],
    };
    if (p.mobile && (!wa || rng.chance(0.5))) {
      sub.phone = p.mobile.e164;
      sub.optinPhone = rng.chance(0.4);
    }
    if (p.email && rng.chance(0.35)) {
      sub.email = p.email;
      sub.optinEmail = rng.chance(0.6);
    }
    const [cliniko, clinic, visits, birthday, lastBooking, vip, injury] = page.fields as [
      McField,
      McField,
      McField,
      McField,
      McField,
      McField,
      McField,
    ];
    const at = (): number => Math.min(now - MINUTE, subscribed + Math.floor(rng.next() * (now - subscribed)));
    if (p.manychatLinksCliniko) sub.customFields.set(cliniko.id, { value: p.clinikoId, updatedAtMs: at() });
    if (rng.chance(0.4)) sub.customFields.set(clinic.id, { value: page.profile.city, updatedAtMs: at() });
    if (rng.chance(0.5)) sub.customFields.set(visits.id, { value: rng.int(0, 14), updatedAtMs: at() });
    if (p.dob && rng.chance(0.3)) sub.customFields.set(birthday.id, { value: p.dob, updatedAtMs: at() });
    if (rng.chance(0.4)) sub.customFields.set(lastBooking.id, { value: at(), updatedAtMs: at() });
    if (rng.chance(0.15)) sub.customFields.set(vip.id, { value: true, updatedAtMs: at() });
    if (rng.chance(0.3))
      sub.customFields.set(injury.id, {
        value: rng.pick(['lower back', 'knee', 'shoulder', 'ankle', 'neck']),
        updatedAtMs: at(),
      });
    for (const t of page.tags) if (rng.chance(0.25)) sub.tags.push(t.id);
    return sub;
  }

  /** Records an inbound message: last_input_text, last_interaction and last_seen move. */
  recordInbound(page: McPage, sub: McSubscriber, text: string, at: number): void {
    sub.lastInputText = text;
    sub.lastInteractionMs = at;
    sub.lastSeenMs = at;
    if (sub.channel === 'instagram') {
      sub.igLastInteractionMs = at;
      sub.igLastSeenMs = at;
    }
    void page;
  }

  newSubscriber(
    page: McPage,
    input: Partial<
      Pick<
        McSubscriber,
        'firstName' | 'lastName' | 'phone' | 'email' | 'whatsappPhone' | 'gender' | 'optinPhone' | 'optinEmail'
      >
    >,
    rng: Rng,
  ): McSubscriber {
    const now = this.clock.nowMs;
    const sub: McSubscriber = {
      id: this.newId(page, rng),
      channel: input.whatsappPhone ? 'whatsapp' : 'messenger',
      status: 'active',
      firstName: input.firstName ?? '',
      lastName: input.lastName ?? '',
      gender: input.gender ?? null,
      profilePic: null,
      locale: 'en_GB',
      language: 'English',
      timezone: 'UTC+08',
      lastInputText: null,
      optinPhone: input.optinPhone ?? false,
      phone: input.phone ?? null,
      optinEmail: input.optinEmail ?? false,
      email: input.email ?? null,
      subscribedMs: now,
      lastInteractionMs: null,
      lastSeenMs: null,
      igLastInteractionMs: null,
      igLastSeenMs: null,
      isFollowupEnabled: true,
      igUsername: null,
      igId: null,
      whatsappPhone: input.whatsappPhone ?? null,
      optinWhatsapp: Boolean(input.whatsappPhone),
      customFields: new Map(),
      tags: [],
      lastGrowthTool: null,
      personIdx: null,
      flowSends: [],
    };
    page.subscribers.push(sub);
    page.byId.set(sub.id, sub);
    return sub;
  }

  mutate(steps = 1): ManyChatMutationSummary {
    const actions: ManyChatMutationAction[] = [];
    for (let s = 0; s < steps; s++) {
      this.stepNo += 1;
      const rng = rngFor(this.seed, 'mc-mutate', this.stepNo);
      this.clock.advance(rng.int(20, 240) * SECOND);
      for (const page of this.pages) {
        const n = rng.int(1, 3) + Math.floor(Math.log10(Math.max(1, this.scale)));
        for (let i = 0; i < n; i++) {
          const t = this.clock.advance(rng.int(1, 30) * SECOND);
          const a = this.mutateOnce(page, rng, t);
          if (a) actions.push(a);
        }
      }
    }
    const counts: Record<string, number> = {};
    for (const a of actions) counts[a.type] = (counts[a.type] ?? 0) + 1;
    return { step: this.stepNo, at: new Date(this.clock.nowMs).toISOString(), actions, counts };
  }

  private mutateOnce(page: McPage, rng: Rng, t: number): ManyChatMutationAction | null {
    const kind = rng.weighted([
      ['inbound', 40],
      ['new', 10],
      ['field', 15],
      ['tag', 15],
      ['profile', 10],
    ] as const);
    if (page.subscribers.length === 0 && kind !== 'new') return null;
    switch (kind) {
      case 'inbound': {
        const sub = rng.pick(page.subscribers);
        this.recordInbound(page, sub, incomingText(rng, sub.language === 'Indonesian' ? 'id' : 'en'), t);
        this.onInbound?.(page, sub);
        return { type: 'inbound_message', pageId: page.pageId, subscriberId: sub.id };
      }
      case 'new': {
        const country = rng.weighted(page.profile.countryMix);
        const sub = this.newSubscriber(
          page,
          {
            firstName: rng.pick(['Mia', 'Kadek', 'Zoë', 'Tom', 'Inés']),
            lastName: '',
            whatsappPhone: randomPhone(rng, country, 'mobile').e164,
          },
          rng,
        );
        this.recordInbound(page, sub, incomingText(rng, country === 'ID' ? 'id' : 'en'), t);
        this.onInbound?.(page, sub);
        return { type: 'subscriber_created', pageId: page.pageId, subscriberId: sub.id };
      }
      case 'field': {
        const sub = rng.pick(page.subscribers);
        const f = rng.pick(page.fields.filter((x) => x.type !== 'date'));
        const value =
          f.type === 'number'
            ? rng.int(1, 20)
            : f.type === 'boolean'
              ? rng.chance(0.5)
              : f.type === 'datetime'
                ? t
                : f.name === 'cliniko_patient_id'
                  ? `8${rng.digits(17)}`
                  : rng.pick(['knee', 'hip', 'Canggu', 'Uluwatu']);
        sub.customFields.set(f.id, { value, updatedAtMs: t });
        return { type: 'custom_field_set', pageId: page.pageId, subscriberId: sub.id, detail: f.name };
      }
      case 'tag': {
        const sub = rng.pick(page.subscribers);
        const tag = rng.pick(page.tags);
        if (sub.tags.includes(tag.id)) {
          sub.tags = sub.tags.filter((x) => x !== tag.id);
          return { type: 'tag_removed', pageId: page.pageId, subscriberId: sub.id, detail: tag.name };
        }
        sub.tags.push(tag.id);
        return { type: 'tag_added', pageId: page.pageId, subscriberId: sub.id, detail: tag.name };
      }
      case 'profile': {
        const sub = rng.pick(page.subscribers);
        if (!sub.email)
          sub.email = `${(sub.firstName || 'guest')
            .toLowerCase()
            .normalize('NFD')
            .replace(/[^a-z]/g, '')}${rng.int(1, 999)}@gmail.com`;
        else sub.lastName = sub.lastName || rng.pick(['Smith', 'Wijaya', 'García']);
        return { type: 'subscriber_updated', pageId: page.pageId, subscriberId: sub.id };
      }
    }
  }
}
