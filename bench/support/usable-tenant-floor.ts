// Bare-SQL floors of a provisioning, one tenant at a time, so that a benchmark can interleave
// them with provisionTenant calls (the same moment of a noisy machine for each):
//
// - the bare floor: CREATE ROLE + CREATE DATABASE ... TEMPLATE, nothing else;
// - a usable tenant: what any control plane must do for a tenant that can log in under the
//   security model Tenantry keeps (docs/security.md: the control plane owns the database; the
//   tenant gets CONNECT and TEMPORARY on it and USAGE and CREATE on public): CREATE ROLE with
//   its password (PostgreSQL checks a verifier against the empty password, one SCRAM key
//   derivation on the server), CREATE DATABASE, the database's grants, and one session in the
//   new database for the schema grant. No bookkeeping, no pooler (pooler-floor.ts), no crash
//   safety: with the pooler's minimum, the lower bound of any provisioning.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import format from 'pg-format';
import { withDatabase } from '../../src/platform/db/connection-url.js';
import { generatePassword, scramSha256Verifier } from '../../src/modules/tenants/credentials.js';

export interface BareTenants {
  /** The ms of one bare floor: a role and a database named `name`. */
  bare(name: string): Promise<number>;
  /** The ms of one usable tenant named `name`. */
  usable(name: string): Promise<number>;
  /** Drops every role and database made. */
  drop(): Promise<void>;
}

/** Floors made from `template` on the server `superuserUrl` (admin: a pool on it). */
export function bareTenants(admin: pg.Pool, superuserUrl: string, template: string, strategy?: 'FILE_COPY'): BareTenants {
  const made: string[] = [];
  const verifier = scramSha256Verifier(generatePassword());
  const createDatabase = (name: string, limit: string) => format('CREATE DATABASE %I TEMPLATE %I', name, template) + limit + (strategy ? ` STRATEGY ${strategy}` : '');
  return {
    async bare(name) {
      made.push(name);
      const started = performance.now();
      await admin.query(format('CREATE ROLE %I LOGIN CONNECTION LIMIT 2', name));
      await admin.query(createDatabase(name, ''));
      return performance.now() - started;
    },
    async usable(name) {
      made.push(name);
      const started = performance.now();
      await admin.query(format('CREATE ROLE %I LOGIN CONNECTION LIMIT 2 PASSWORD %L', name, verifier));
      await admin.query(createDatabase(name, ' CONNECTION LIMIT 4'));
      await admin.query(format('REVOKE ALL ON DATABASE %1$I FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE %1$I TO %1$I', name));
      const inside = new pg.Client({ connectionString: withDatabase(superuserUrl, name) });
      await inside.connect();
      try {
        await inside.query(format('GRANT USAGE, CREATE ON SCHEMA public TO %I', name));
      } finally {
        await inside.end();
      }
      return performance.now() - started;
    },
    async drop() {
      for (const name of made.splice(0)) {
        await admin.query(format('DROP DATABASE IF EXISTS %I', name));
        await admin.query(format('DROP ROLE IF EXISTS %I', name));
      }
    },
  };
}
