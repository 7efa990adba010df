import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Secrets never reach the logger (keys and passwords are not
 * passed to it); the redaction list is a second line of defence.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tenantry' },
      redact: { paths: ['authorization', '*.authorization', 'password', '*.password', 'apiKey', '*.apiKey'], censor: '[redacted]' },
    },
    destination,
  );
}
