/**
 * Limits on pushed (webhook) payloads, checked before any parsing or mapping: whoever can reach the endpoint can
 * send anything, and JSON.parse, JSONata and the writer all cost time and memory in proportion to what they get.
 * The demo receiver uses them today, the service (`routiq serve`) tomorrow.
 */

/** Largest accepted body. Real Chatwoot/ManyChat events are a few KiB; 1 MiB leaves room for long messages. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** Deepest accepted JSON nesting (objects and arrays). Real events nest fewer than 10 levels. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

export interface PayloadLimits {
  maxBodyBytes: number;
  maxJsonDepth: number;
}

export const DEFAULT_PAYLOAD_LIMITS: Readonly<PayloadLimits> = {
  maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
  maxJsonDepth: DEFAULT_MAX_JSON_DEPTH,
};

/** Why a payload is refused: an HTTP status and a reason to send back. */
export interface PayloadRejection {
  status: 400 | 413;
  reason: string;
}

/**
 * The nesting depth of a JSON text, found by one linear scan that skips string contents, so a hostile
 * `[[[[…` is refused before JSON.parse (or anything recursive) sees it. Returns the offset where `max` is first
 * exceeded, or undefined when the text stays within it. Malformed JSON is left for JSON.parse to reject.
 */
export function checkJsonDepth(text: string, max: number): { depth: number; offset: number } | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth > max) return { depth, offset: i };
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return undefined;
}

/** A body size announced or reached beyond the limit. */
export function tooLarge(bytes: number, limits: PayloadLimits = DEFAULT_PAYLOAD_LIMITS): PayloadRejection | undefined {
  return bytes > limits.maxBodyBytes
    ? { status: 413, reason: `the body is larger than ${limits.maxBodyBytes} bytes` }
    : undefined;
}

/** The checks on a complete body (size, then nesting), before it is parsed. */
export function checkPayload(
  body: string,
  limits: PayloadLimits = DEFAULT_PAYLOAD_LIMITS,
): PayloadRejection | undefined {
  const size = tooLarge(Buffer.byteLength(body, 'utf8'), limits);
  if (size) return size;
  const deep = checkJsonDepth(body, limits.maxJsonDepth);
  if (deep) {
    return {
      status: 400,
      reason: `the JSON body nests deeper than ${limits.maxJsonDepth} levels (at character ${deep.offset})`,
    };
  }
  return undefined;
}
