import { describe, expect, it } from 'vitest';
import { BASE, requestKey } from './cassette.ts';

describe('requestKey', () => {
  it('sorts the query and drops credential parameters', () => {
    expect(requestKey('/v1/patients?b=2&a=1&api_key=s3cret', ['api_key'])).toBe('/v1/patients?a=1&b=2');
  });

  it('puts {{BASE}} for the origin inside a parameter value, so a recording replays on another origin', () => {
    // Calendly: organization=<the organization's URI on the API host>.
    const rec = requestKey(
      `/scheduled_events?count=100&organization=${encodeURIComponent('https://api.calendly.com/organizations/ABC')}`,
      [],
      'https://api.calendly.com',
    );
    const replay = requestKey(
      `/scheduled_events?organization=${encodeURIComponent('http://127.0.0.1:40123/organizations/ABC')}&count=100`,
      [],
      'http://127.0.0.1:40123',
    );
    expect(rec).toBe(replay);
    expect(decodeURIComponent(rec)).toContain(`organization=${BASE}/organizations/ABC`);
  });
});
