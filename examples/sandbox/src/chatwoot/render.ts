/** Chatwoot JSON shapes, following the jbuilder views and model `*_data` methods (see README). */
import { HOUR, isoMillis, unix } from '../common/time.ts';
import {
  type ChatwootModel,
  type CwAccount,
  type CwAgent,
  type CwAttachment,
  type CwContact,
  type CwConversation,
  type CwInbox,
  type CwMessage,
  type CwTeam,
  MESSAGE_TYPE_INT,
  MESSAGE_TYPE_NAME,
} from './model.ts';

type Json = Record<string, unknown>;

export class ChatwootRenderer {
  constructor(
    private readonly model: ChatwootModel,
    private readonly origin: () => string,
  ) {}

  private account(id: number): CwAccount {
    return this.model.accountsById.get(id) as CwAccount;
  }

  private inbox(account: CwAccount, id: number): CwInbox {
    return account.inboxes.find((i) => i.id === id) as CwInbox;
  }

  // ---------------------------------------------------------------- contacts

  /** `api/v1/models/_contact.json.jbuilder`. */
  contact(c: CwContact, withInboxes: boolean): Json {
    const account = this.account(c.accountId);
    const out: Json = {
      additional_attributes: c.additionalAttributes,
      availability_status: 'offline',
      email: c.email,
      id: c.id,
      name: c.name,
      phone_number: c.phone,
      blocked: c.blocked,
      identifier: c.identifier,
      thumbnail: '',
      custom_attributes: c.customAttributes,
    };
    if (c.lastActivityAtMs !== null) out.last_activity_at = unix(c.lastActivityAtMs);
    out.created_at = unix(c.createdAtMs);
    if (withInboxes)
      out.contact_inboxes = c.inboxes.map((ci) => {
        const inbox = this.inbox(account, ci.inboxId);
        return {
          source_id: ci.sourceId,
          inbox: {
            id: inbox.id,
            avatar_url: '',
            channel_id: inbox.channelId,
            name: inbox.name,
            channel_type: inbox.channelType,
            provider: inbox.provider,
          },
        };
      });
    return out;
  }

  /** `Contact#push_event_data`. */
  contactPush(c: CwContact): Json {
    return {
      additional_attributes: c.additionalAttributes,
      custom_attributes: c.customAttributes,
      email: c.email,
      id: c.id,
      identifier: c.identifier,
      name: c.name,
      phone_number: c.phone,
      thumbnail: '',
      blocked: c.blocked,
      type: 'contact',
    };
  }

  /** `Contact#webhook_data`: no `type` key. */
  contactWebhook(c: CwContact): Json {
    const account = this.account(c.accountId);
    return {
      account: { id: account.id, name: account.name },
      additional_attributes: c.additionalAttributes,
      avatar: '',
      custom_attributes: c.customAttributes,
      email: c.email,
      id: c.id,
      identifier: c.identifier,
      name: c.name,
      phone_number: c.phone,
      thumbnail: '',
      blocked: c.blocked,
    };
  }

  // ---------------------------------------------------------------- users, bots, teams

  agent(a: CwAgent): Json {
    return {
      id: a.id,
      account_id: a.accountId,
      availability_status: a.availability,
      auto_offline: true,
      confirmed: true,
      email: a.email,
      available_name: a.name,
      name: a.name,
      role: a.role,
      thumbnail: '',
      custom_role_id: null,
    };
  }

  userPush(a: CwAgent): Json {
    return {
      id: a.id,
      name: a.name,
      available_name: a.name,
      avatar_url: '',
      type: 'user',
      availability_status: a.availability,
      thumbnail: '',
    };
  }

  team(t: CwTeam): Json {
    return {
      id: t.id,
      name: t.name,
      description: t.description,
      allow_auto_assign: true,
      account_id: t.accountId,
      is_member: true,
    };
  }

  private senderPush(m: CwMessage): Json | undefined {
    const account = this.account(m.accountId);
    if (m.senderType === 'Contact') {
      const c = account.contactsById.get(m.senderId as number);
      return c ? this.contactPush(c) : undefined;
    }
    if (m.senderType === 'User') {
      const a = account.agents.find((x) => x.id === m.senderId);
      return a ? this.userPush(a) : undefined;
    }
    if (m.senderType === 'AgentBot')
      return { id: account.bot.id, name: account.bot.name, avatar_url: '', type: 'agent_bot' };
    return undefined;
  }

  private senderWebhook(m: CwMessage): Json | null {
    const account = this.account(m.accountId);
    if (m.senderType === 'Contact') {
      const c = account.contactsById.get(m.senderId as number);
      return c ? this.contactWebhook(c) : null;
    }
    if (m.senderType === 'User') {
      const a = account.agents.find((x) => x.id === m.senderId);
      return a ? { id: a.id, name: a.name, email: a.email, type: 'user' } : null;
    }
    if (m.senderType === 'AgentBot') return { id: account.bot.id, name: account.bot.name, type: 'agent_bot' };
    return null;
  }

  // ---------------------------------------------------------------- messages

  /** `Attachment#push_event_data`. data_url is an ActiveStorage redirect URL served by the sim. */
  attachment(a: CwAttachment): Json {
    const base: Json = { id: a.id, message_id: a.messageId, file_type: a.fileType, account_id: a.accountId };
    if (a.fileType === 'location')
      return {
        ...base,
        coordinates_lat: a.lat,
        coordinates_long: a.long,
        fallback_title: a.fallbackTitle,
        data_url: `https://maps.google.com/?q=${a.lat},${a.long}`,
      };
    const key = Buffer.from(`att-${a.accountId}-${a.id}`).toString('base64url');
    const out: Json = {
      ...base,
      extension: a.extension,
      data_url: `${this.origin()}/rails/active_storage/blobs/redirect/${key}/${encodeURIComponent(a.fileName)}`,
      thumb_url:
        a.fileType === 'image'
          ? `${this.origin()}/rails/active_storage/representations/redirect/${key}/${encodeURIComponent(a.fileName)}`
          : '',
      file_size: a.fileSize,
      width: a.width,
      height: a.height,
    };
    if (a.fileType === 'audio') out.transcribed_text = a.transcribedText ?? '';
    return out;
  }

  /** REST `api/v1/models/_message.json.jbuilder`: integer message_type, unix created_at, no updated_at/sender_type. */
  messageRest(m: CwMessage): Json {
    const out: Json = {
      id: m.id,
      content: m.content,
      inbox_id: m.inboxId,
      conversation_id: m.displayId,
      message_type: MESSAGE_TYPE_INT[m.kind],
      content_type: m.contentType,
      status: m.status,
      content_attributes: m.contentAttributes,
      created_at: unix(m.createdAtMs),
      private: m.private,
      source_id: m.sourceId,
    };
    const sender = this.senderPush(m);
    if (sender) out.sender = sender;
    if (m.attachments.length > 0) out.attachments = m.attachments.map((a) => this.attachment(a));
    return out;
  }

  /** `Message#push_event_data`: every column (so updated_at, sender_type and sender_id DO appear here). */
  messagePush(m: CwMessage): Json {
    const conv = this.model.convByDbId.get(m.convDbId) as CwConversation;
    const contactInbox = this.contactInboxOf(conv);
    const out: Json = {
      id: m.id,
      content: m.content,
      account_id: m.accountId,
      inbox_id: m.inboxId,
      conversation_id: m.displayId,
      message_type: MESSAGE_TYPE_INT[m.kind],
      created_at: unix(m.createdAtMs),
      updated_at: isoMillis(m.updatedAtMs),
      private: m.private,
      status: m.status,
      source_id: m.sourceId,
      content_type: m.contentType,
      content_attributes: m.contentAttributes,
      sender_type: m.senderType,
      sender_id: m.senderId,
      external_source_ids: {},
      additional_attributes: m.additionalAttributes,
      processed_message_content: m.content,
      sentiment: {},
      conversation: {
        assignee_id: conv.assigneeId,
        unread_count: this.model.unreadCount(conv),
        last_activity_at: unix(conv.lastActivityAtMs),
        contact_inbox: { source_id: contactInbox?.sourceId ?? null },
      },
    };
    if (m.attachments.length > 0) out.attachments = m.attachments.map((a) => this.attachment(a));
    const sender = this.senderPush(m);
    if (sender) out.sender = sender;
    return out;
  }

  /** `Message#webhook_data` + event: STRING message_type, ISO created_at. */
  messageWebhook(m: CwMessage, event: string): Json {
    const account = this.account(m.accountId);
    const conv = this.model.convByDbId.get(m.convDbId) as CwConversation;
    const inbox = this.inbox(account, m.inboxId);
    const out: Json = {
      account: { id: account.id, name: account.name },
      additional_attributes: m.additionalAttributes,
      content_attributes: m.contentAttributes,
      content_type: m.contentType,
      content: m.content,
      conversation: this.conversationPush(conv),
      created_at: isoMillis(m.createdAtMs),
      id: m.id,
      inbox: { id: inbox.id, name: inbox.name },
      message_type: MESSAGE_TYPE_NAME[MESSAGE_TYPE_INT[m.kind]],
      private: m.private,
      sender: this.senderWebhook(m),
      source_id: m.sourceId,
    };
    if (m.attachments.length > 0) out.attachments = m.attachments.map((a) => this.attachment(a));
    out.event = event;
    return out;
  }

  // ---------------------------------------------------------------- conversations

  private contactInboxOf(conv: CwConversation) {
    const account = this.account(conv.accountId);
    const contact = account.contactsById.get(conv.contactId);
    return contact?.inboxes.find((ci) => ci.id === conv.contactInboxId);
  }

  private canReply(conv: CwConversation): boolean {
    const account = this.account(conv.accountId);
    const inbox = this.inbox(account, conv.inboxId);
    if (inbox.channelType !== 'Channel::Whatsapp') return true;
    const lastIncoming = this.model.lastMessage(
      conv,
      () => true,
      (k) => k === 'incoming',
    );
    return lastIncoming !== null && this.model.clock.nowMs - lastIncoming.createdAtMs < 24 * HOUR;
  }

  /** `api/v1/conversations/partials/_conversation.json.jbuilder` (list items, show, contact conversations). */
  conversation(conv: CwConversation): Json {
    const account = this.account(conv.accountId);
    const inbox = this.inbox(account, conv.inboxId);
    const contact = account.contactsById.get(conv.contactId) as CwContact;
    const meta: Json = { sender: this.contact(contact, false), channel: inbox.channelType };
    const assignee = conv.assigneeId === null ? undefined : account.agents.find((a) => a.id === conv.assigneeId);
    if (assignee) {
      meta.assignee = this.agent(assignee);
      meta.assignee_type = 'User';
    }
    const team = conv.teamId === null ? undefined : account.teams.find((t) => t.id === conv.teamId);
    if (team) meta.team = this.team(team);
    meta.hmac_verified = false;
    const count = this.model.messageCount(conv);
    const last = count > 0 ? this.model.messageAt(conv, count - 1) : null;
    const lastNonActivity = this.model.lastMessage(
      conv,
      (m) => m.kind !== 'activity',
      (k) => k !== 'activity',
    );
    return {
      meta,
      id: conv.displayId,
      messages: last ? [this.messagePush(last)] : [],
      account_id: conv.accountId,
      uuid: conv.uuid,
      additional_attributes: conv.additionalAttributes,
      agent_last_seen_at: conv.agentLastSeenAtMs === null ? 0 : unix(conv.agentLastSeenAtMs),
      assignee_last_seen_at: conv.assigneeLastSeenAtMs === null ? 0 : unix(conv.assigneeLastSeenAtMs),
      can_reply: this.canReply(conv),
      contact_last_seen_at: conv.contactLastSeenAtMs === null ? 0 : unix(conv.contactLastSeenAtMs),
      custom_attributes: conv.customAttributes,
      inbox_id: conv.inboxId,
      labels: conv.labels,
      muted: false,
      snoozed_until: conv.snoozedUntilMs === null ? null : isoMillis(conv.snoozedUntilMs),
      status: conv.status,
      created_at: unix(conv.createdAtMs),
      updated_at: conv.updatedAtUs / 1e6,
      timestamp: unix(conv.lastActivityAtMs),
      first_reply_created_at: conv.firstReplyCreatedAtMs === null ? 0 : unix(conv.firstReplyCreatedAtMs),
      unread_count: this.model.unreadCount(conv),
      last_non_activity_message: lastNonActivity ? this.messagePush(lastNonActivity) : null,
      last_activity_at: unix(conv.lastActivityAtMs),
      priority: conv.priority,
      waiting_since: conv.waitingSinceMs === null ? 0 : unix(conv.waitingSinceMs),
      sla_policy_id: null,
    };
  }

  /** `Conversations::EventDataPresenter#push_data` (webhooks). */
  conversationPush(conv: CwConversation): Json {
    const account = this.account(conv.accountId);
    const inbox = this.inbox(account, conv.inboxId);
    const contact = account.contactsById.get(conv.contactId) as CwContact;
    const ci = this.contactInboxOf(conv);
    const assignee = conv.assigneeId === null ? undefined : account.agents.find((a) => a.id === conv.assigneeId);
    const team = conv.teamId === null ? undefined : account.teams.find((t) => t.id === conv.teamId);
    const lastChat = this.model.lastMessage(
      conv,
      (m) => !m.private && m.kind !== 'activity',
      (k) => k !== 'activity' && k !== 'note',
    );
    return {
      additional_attributes: conv.additionalAttributes,
      can_reply: this.canReply(conv),
      channel: inbox.channelType,
      contact_inbox: {
        id: ci?.id ?? null,
        contact_id: contact.id,
        inbox_id: inbox.id,
        source_id: ci?.sourceId ?? null,
        created_at: ci ? isoMillis(ci.createdAtMs) : null,
        updated_at: ci ? isoMillis(ci.createdAtMs) : null,
        hmac_verified: false,
        pubsub_token: ci?.pubsubToken ?? null,
      },
      id: conv.displayId,
      inbox_id: conv.inboxId,
      messages: lastChat ? [this.messagePush(lastChat)] : [],
      labels: conv.labels,
      meta: {
        sender: this.contactPush(contact),
        assignee: assignee ? this.userPush(assignee) : null,
        assignee_type: assignee ? 'User' : null,
        team: team ? { id: team.id, name: team.name } : null,
        hmac_verified: false,
      },
      status: conv.status,
      custom_attributes: conv.customAttributes,
      snoozed_until: conv.snoozedUntilMs === null ? null : isoMillis(conv.snoozedUntilMs),
      unread_count: this.model.unreadCount(conv),
      first_reply_created_at: conv.firstReplyCreatedAtMs === null ? null : isoMillis(conv.firstReplyCreatedAtMs),
      priority: conv.priority,
      waiting_since: conv.waitingSinceMs === null ? 0 : unix(conv.waitingSinceMs),
      agent_last_seen_at: conv.agentLastSeenAtMs === null ? 0 : unix(conv.agentLastSeenAtMs),
      contact_last_seen_at: conv.contactLastSeenAtMs === null ? 0 : unix(conv.contactLastSeenAtMs),
      last_activity_at: unix(conv.lastActivityAtMs),
      timestamp: unix(conv.lastActivityAtMs),
      created_at: unix(conv.createdAtMs),
      updated_at: conv.updatedAtUs / 1e6,
    };
  }

  /** `meta` of GET .../messages. */
  messagesMeta(conv: CwConversation): Json {
    const account = this.account(conv.accountId);
    const contact = account.contactsById.get(conv.contactId) as CwContact;
    const assignee = conv.assigneeId === null ? undefined : account.agents.find((a) => a.id === conv.assigneeId);
    return {
      labels: conv.labels,
      additional_attributes: conv.additionalAttributes,
      contact: this.contactPush(contact),
      assignee: assignee ? this.agent(assignee) : null,
      agent_last_seen_at: conv.agentLastSeenAtMs === null ? null : isoMillis(conv.agentLastSeenAtMs),
      assignee_last_seen_at: conv.assigneeLastSeenAtMs === null ? null : isoMillis(conv.assigneeLastSeenAtMs),
    };
  }

  inboxJson(i: CwInbox): Json {
    return {
      id: i.id,
      avatar_url: '',
      channel_id: i.channelId,
      name: i.name,
      channel_type: i.channelType,
      greeting_enabled: false,
      greeting_message: null,
      working_hours_enabled: false,
      enable_email_collect: true,
      csat_survey_enabled: true,
      enable_auto_assignment: true,
      out_of_office_message: null,
      timezone: 'UTC',
      allow_messages_after_resolved: true,
      provider: i.provider,
      phone_number: i.phoneNumber,
    };
  }
}
