import pino, { type DestinationStream, type Logger } from 'pino';
import { redactUrlCredentials } from './util/redact.ts';

/**
 * JSON lines on stderr (stdout is for data). Secrets are kept out twice over: known secret fields are censored
 * wherever they appear in a log object, and every finished line has URL credentials (`scheme://user:pass@host`)
 * masked, whichever field, message, error stack or child binding carried them (a retry warning quoting a
 * connection's base_url, a driver error quoting DATABASE_URL).
 */
export function createLogger(level: string, destination: DestinationStream = pino.destination(2)): Logger {
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
          '*.password',
          'headers.authorization',
        ],
        censor: '***',
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    redactingStream(destination),
  );
}

/** The last step before the bytes leave: the serialized line, whatever produced it. */
function redactingStream(dest: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      return dest.write(redactUrlCredentials(line));
    },
  };
}

export type { Logger };
