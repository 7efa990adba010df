import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../generated/prisma/client.js';
import type { SessionLimits } from './cluster-admin.js';
import { CONTROL_CLIENT_POOL } from './connection-budget.js';
import { startupOptions } from './session-settings.js';

export type ControlClient = PrismaClient;

/** Counts the SQL statements the control client sends (for metrics, and for tests that prove batching). */
export interface ControlQueryCounter {
  queries: number;
}

/**
 * Prisma on the control database. Its sessions have statement and lock timeouts, its pool an
 * acquire timeout, and its interactive transactions a generous limit (they only ever hold
 * control-database work; cluster DDL never runs inside one).
 */
export function createControlClient(connectionString: string, limits: SessionLimits): { db: ControlClient; counter: ControlQueryCounter } {
  const db = new PrismaClient({
    adapter: new PrismaPg({
      connectionString,
      max: CONTROL_CLIENT_POOL,
      options: startupOptions({ statementTimeoutMs: limits.statementTimeoutMs, lockTimeoutMs: limits.lockTimeoutMs }),
      connectionTimeoutMillis: limits.connectTimeoutMs,
    }),
    log: [{ emit: 'event', level: 'query' }],
    transactionOptions: { maxWait: limits.connectTimeoutMs, timeout: Math.max(30_000, limits.lockTimeoutMs * 3) },
  });
  const counter: ControlQueryCounter = { queries: 0 };
  // Statements that do work: transaction control (BEGIN, COMMIT, which some Prisma versions
  // report as events and others do not) is not counted.
  db.$on('query', (e) => {
    const sql = e.query.trim();
    if (sql !== '' && !/^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/i.test(sql)) counter.queries++;
  });
  return { db, counter };
}
