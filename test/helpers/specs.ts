/**
 * Small connector specs shared by engine tests (the bundled connectors live in connectors/). Both run against
 * test/helpers/tiny-api.ts.
 */

/** The header every test spec shares: a base_url setting and no auth unless `auth` is given. */
function header(name: string, version = '1.0.0', auth = 'auth: { type: none }'): string {
  return `spec_version: 1
name: ${name}
version: ${version}
connection:
  properties:
    base_url: { type: string, format: uri }
  required: [base_url]
base_url: "{{ $config.base_url }}"
${auth}
`;
}

/**
 * One paged `items` stream (/items/page, 10 per page) mapped by `mapping` into `target`
 * (default: practitioners with id and name). `streamExtra` is inserted into the stream (e.g. hooks).
 */
export function itemsSpec(
  name: string,
  opts: { target?: string; mapping?: string; streamExtra?: string; version?: string } = {},
): string {
  return `${header(name, opts.version)}streams:
  - name: items
    request: { path: /items/page }
    records: data
    pagination: { type: page_number, size_param: per_page, size: 10 }
${opts.streamExtra ?? ''}    map:
      - target: ${opts.target ?? 'practitioners'}
        expression: |
          ${opts.mapping ?? '{ "external_id": id, "display_name": name }'}
`;
}

/** Parent → child: items (incremental, asc) → conversations; each item's notes (id windows) → messages. */
export function threadsSpec(name = 'threads'): string {
  return `${header(name)}streams:
  - name: items
    request: { path: /items/page }
    records: data
    pagination: { type: page_number, size_param: per_page, size: 10 }
    incremental:
      cursor_field: updated_at
      type: datetime
      order: asc
      send: { params: { updated_since: "{{ $cursor }}" } }
    map:
      - target: conversations
        expression: |
          { "external_id": id, "status": "open", "inbox": name, "last_activity_at": updated_at }
  - name: notes
    parent: { stream: items, key: id }
    request: { path: "/items/{{ $parent.id }}/notes" }
    records: payload
    pagination: { type: id_window, before_page_size: 4, after_page_size: 10 }
    incremental: { cursor_field: id, type: integer, order: none }
    map:
      - target: messages
        when: body != 'skip'
        expression: |
          {
            "external_id": $string(id),
            "conversation_external_id": item_id,
            "direction": "inbound",
            "sender_type": "patient",
            "content": body,
            "sent_at": $fromMillis(created_at * 1000)
          }
`;
}
