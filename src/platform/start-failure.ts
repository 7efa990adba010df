import type { Logger } from './logger.js';

/** The error and its causes as a person reads them: each message on lines of its own, indented. */
export function describeStartFailure(err: unknown, withStack: boolean): string {
  const indent = (text: string) => text.split('\n').map((line) => `  ${line}`.trimEnd()).join('\n');
  const parts = ['Tenantry could not start:'];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    const message = current instanceof Error ? current.message : String(current);
    parts.push(indent(depth === 0 ? message : `because: ${message}`));
    current = current instanceof Error ? current.cause : undefined;
  }
  if (withStack && err instanceof Error && err.stack) parts.push(indent(err.stack));
  else parts.push('  (LOG_LEVEL=debug also shows where it happened)');
  return `\n${parts.join('\n')}\n\n`;
}

/**
 * A failed start: one JSON log line for a log collector; on a terminal (stdout is a TTY)
 * the message itself, readably, on stderr (a JSON line with `\n` inside is hard to read).
 */
export function reportStartFailure(err: unknown, logger: Logger, terminal: boolean): void {
  if (terminal) process.stderr.write(describeStartFailure(err, logger.isLevelEnabled('debug')));
  else logger.fatal({ err }, 'Tenantry could not start');
}
