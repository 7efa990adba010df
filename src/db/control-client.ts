import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { CONTROL_CLIENT_POOL } from './connection-budget.js';

export type ControlClient = PrismaClient;

/** Counts the SQL statements the control client sends (for metrics, and for tests that prove batching). */
export interface ControlQueryCounter {
  queries: number;
}

export function createControlClient(connectionString: string): { db: ControlClient; counter: ControlQueryCounter } {
  const db = new PrismaClient({
    adapter: new PrismaPg({ connectionString, max: CONTROL_CLIENT_POOL }),
    log: [{ emit: 'event', level: 'query' }],
  });
  const counter: ControlQueryCounter = { queries: 0 };
  db.$on('query', () => {
    counter.queries++;
  });
  return { db, counter };
}
