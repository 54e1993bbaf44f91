import { describe, expect, it } from 'vitest';
import { tlsOptions } from './database.ts';

describe('database TLS (database.tls, the URL sslmode)', () => {
  it('verifies certificate and host name by default for a server that is not on this machine', () => {
    expect(tlsOptions('postgresql://u@db.example.com:5432/routiq', undefined)).toEqual({ rejectUnauthorized: true });
    expect(tlsOptions('postgresql://u@10.0.0.5/routiq', {})).toEqual({ rejectUnauthorized: true });
  });

  it('needs no TLS on this machine (loopback or a Unix socket)', () => {
    expect(tlsOptions('postgresql://postgres@127.0.0.1:5432/test', undefined)).toBe(false);
    expect(tlsOptions('postgresql://postgres@localhost/test', undefined)).toBe(false);
    expect(tlsOptions('postgresql://postgres@[::1]/test', undefined)).toBe(false);
    expect(tlsOptions('postgresql://postgres@x/test?host=/var/run/postgresql', undefined)).toBe(false);
  });

  it("takes the URL's sslmode when the config sets no mode, and the config's mode over it", () => {
    expect(tlsOptions('postgresql://u@db.example.com/r?sslmode=require', undefined)).toEqual({
      rejectUnauthorized: false,
    });
    expect(tlsOptions('postgresql://u@db.example.com/r?sslmode=disable', undefined)).toBe(false);
    expect(tlsOptions('postgresql://u@127.0.0.1/r?sslmode=verify-full', undefined)).toEqual({
      rejectUnauthorized: true,
    });
    expect(tlsOptions('postgresql://u@db.example.com/r?sslmode=disable', { mode: 'verify-full' })).toEqual({
      rejectUnauthorized: true,
    });
  });

  it('passes the CA, and verify-ca checks the chain but not the host name', () => {
    const ca = '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n';
    expect(tlsOptions('postgresql://u@db.example.com/r', { ca })).toEqual({ rejectUnauthorized: true, ca });
    const v = tlsOptions('postgresql://u@db.example.com/r', { mode: 'verify-ca', ca });
    expect(v).toMatchObject({ rejectUnauthorized: true, ca });
    if (!v) throw new Error('verify-ca must enable TLS');
    expect(typeof v.checkServerIdentity).toBe('function');
    expect(v.checkServerIdentity?.()).toBeUndefined();
  });
});
