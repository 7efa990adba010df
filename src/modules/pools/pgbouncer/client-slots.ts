// How many clients the shared PgBouncer accepts (max_client_conn), from the fleet.
//
// PgBouncer 1.18 has no per-database or per-user client cap (max_db_client_connections
// arrived in 1.24); what it caps per tenant is server connections (the pool's
// max_db_connections = the quota). So the global client limit is sized to give every
// tenant a share proportional to its quota:
//
//   max_client_conn = POOLER_MAX_CLIENT_CONN, or else max(100, Σ quota × POOLER_CLIENTS_PER_CONNECTION)
//
// capped so that clients plus every possible server connection fit in PgBouncer's
// file-descriptor limit (inherited from Tenantry's process, RLIMIT_NOFILE):
//
//   max_client_conn ≤ nofile − Σ max_db_connections − 64 (listen sockets, log, DNS, admin console)
//
// A tenant that opens more clients than its share still can, up to max_client_conn:
// see docs/poolers.md, "Fairness between tenants", for what happens then.
import { readFileSync } from 'node:fs';
import type { PoolSpec } from '../pooler-driver.js';
import { MAX_CLIENT_CONN } from './pgbouncer-config.js';

export interface ClientSlotSizing {
  perConnection: number;
  /** A fixed max_client_conn instead of the formula. */
  fixed?: number;
  /** PgBouncer's file-descriptor limit (see openFileLimit()). */
  fileLimit: number;
}

export interface ClientSlots {
  maxClientConn: number;
  /** What the formula asked for before the file-descriptor cap. */
  wanted: number;
  /** True when the file-descriptor limit lowered it. */
  capped: boolean;
}

const MIN_CLIENT_CONN = 100;
/** Descriptors PgBouncer needs besides clients and servers. */
const FD_RESERVE = 64;

export function clientSlots(pools: readonly Pick<PoolSpec, 'maxDbConnections'>[], sizing: ClientSlotSizing): ClientSlots {
  const servers = pools.reduce((sum, p) => sum + p.maxDbConnections, 0);
  const wanted = sizing.fixed ?? Math.max(MIN_CLIENT_CONN, servers * sizing.perConnection);
  const room = Math.max(1, sizing.fileLimit - servers - FD_RESERVE);
  return { maxClientConn: Math.min(wanted, room, MAX_CLIENT_CONN), wanted, capped: wanted > room };
}

/** The soft RLIMIT_NOFILE of this process, which a child PgBouncer inherits; 1024 when it cannot be read. */
export function openFileLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    if (soft === 'unlimited') return 1_048_576;
    const n = Number(soft);
    return Number.isInteger(n) && n > 0 ? n : 1024;
  } catch {
    return 1024;
  }
}
