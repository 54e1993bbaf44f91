import pino, { type Logger } from 'pino';

/** JSON lines on stderr (stdout is for data); secrets are redacted wherever they appear in a log object. */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { service: 'routiq' },
      redact: {
        paths: [
          '*.authorization',
          '*.Authorization',
          '*.api_access_token',
          '*.token',
          '*.secret',
          '*.secrets',
          '*.api_key',
          'headers.authorization',
        ],
        censor: '***',
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination(2),
  );
}

export type { Logger };
