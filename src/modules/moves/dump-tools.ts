import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../../platform/errors.js';

const run = promisify(execFile);

export interface DumpTools {
  major: number;
  pgDump: string;
  pgRestore: string;
}

/** pg_dump/pg_restore pairs on this machine: PATH's, and each /usr/lib/postgresql/<major>/bin (Debian's layout), newest first. */
export async function findDumpTools(extraDirs: string[] = []): Promise<DumpTools[]> {
  const dirs = [...extraDirs];
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) for (const v of readdirSync(root)) dirs.push(path.join(root, v, 'bin'));
  const found = new Map<number, DumpTools>();
  const candidates: [string, string][] = dirs.map((d) => [path.join(d, 'pg_dump'), path.join(d, 'pg_restore')]);
  candidates.push(['pg_dump', 'pg_restore']);
  for (const [pgDump, pgRestore] of candidates) {
    if (pgDump.includes('/') && !(existsSync(pgDump) && existsSync(pgRestore))) continue;
    try {
      const { stdout } = await run(pgDump, ['--version']);
      const major = Number(/\b(\d+)(?:\.\d+)?/.exec(stdout.replace(/^[^)]*\)/, ''))?.[1]);
      if (major && !found.has(major)) found.set(major, { major, pgDump, pgRestore });
    } catch {
      // not there
    }
  }
  return [...found.values()].sort((a, b) => b.major - a.major);
}

/** The newest tools whose major is at least the source server's; DUMP_TOOL_UNAVAILABLE naming both otherwise. */
export async function dumpToolsFor(sourceVersionNum: number, targetVersionNum: number, extraDirs: string[] = []): Promise<DumpTools> {
  const need = Math.floor(sourceVersionNum / 10000);
  const tools = await findDumpTools(extraDirs);
  const fit = tools.find((t) => t.major >= need);
  if (!fit) {
    throw new UserError(
      'DUMP_TOOL_UNAVAILABLE',
      `moving needs pg_dump and pg_restore of PostgreSQL ${need} or newer (the source server is ${need}, the target ${Math.floor(targetVersionNum / 10000)}); ` +
        `this machine has ${tools.length ? tools.map((t) => `version ${t.major} (${t.pgDump})`).join(', ') : 'none'}`,
      'targetClusterId',
    );
  }
  return fit;
}

/** libpq's environment for a URL and database: the password never appears in a process's arguments. */
function libpqEnv(url: string, database: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    PATH: process.env.PATH,
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: database,
    PGAPPNAME: 'tenantry-move',
    PGCONNECT_TIMEOUT: '10',
    PGOPTIONS: '-c statement_timeout=0 -c lock_timeout=0',
  };
}

function runTool(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${path.basename(bin)} failed (${code}): ${err.trim().slice(0, 2000)}`))));
  });
}

/** A schema-only dump of the source database in a temporary folder, for pg_restore to read by parts. */
export async function withSchemaDump<T>(tools: DumpTools, sourceUrl: string, database: string, fn: (dump: SchemaDump) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tenantry-move-'));
  try {
    const file = path.join(dir, 'schema.dump');
    await runTool(tools.pgDump, ['--schema-only', '--format=custom', `--file=${file}`], libpqEnv(sourceUrl, database));
    return await fn(new SchemaDump(tools, file, dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export class SchemaDump {
  constructor(
    private readonly tools: DumpTools,
    private readonly file: string,
    private readonly dir: string,
  ) {}

  /** The table of contents of one section (pg_restore -l). */
  async entries(section: 'pre-data' | 'post-data'): Promise<string[]> {
    const out = await runTool(this.tools.pgRestore, ['--list', `--section=${section}`, this.file], { PATH: process.env.PATH });
    return out.split('\n').filter((l) => l.trim() && !l.startsWith(';'));
  }

  /** Restores the whole section, or only the given TOC entries, in one transaction; stops at the first error. */
  async restore(targetUrl: string, database: string, what: { section: 'pre-data' } | { entries: string[] }): Promise<void> {
    const args = ['--exit-on-error', '--single-transaction', `--dbname=${database}`];
    if ('section' in what) args.push(`--section=${what.section}`);
    else {
      if (what.entries.length === 0) return;
      const list = path.join(this.dir, `list-${Date.now()}-${Math.random().toString(16).slice(2)}`);
      await writeFile(list, what.entries.join('\n') + '\n');
      args.push(`--use-list=${list}`);
    }
    await runTool(this.tools.pgRestore, [...args, this.file], libpqEnv(targetUrl, database));
  }
}

/** The TOC entry's object oid (`<id>; <catalog oid> <oid> <TYPE> …`). */
export function entryOid(line: string): number | null {
  const m = /^\d+;\s+\d+\s+(\d+)\s/.exec(line);
  return m ? Number(m[1]) : null;
}

/** Publications and subscriptions: a move's own, never restored on the target (tenants cannot make them: no CREATE on the database, and FOR ALL TABLES needs a superuser). */
export function isReplicationEntry(line: string): boolean {
  return /^\d+;\s+\d+\s+\d+\s+(PUBLICATION|SUBSCRIPTION)\b/.test(line);
}

/** OFFLINE: the whole database, pg_dump -Fc piped into pg_restore on the target, in one transaction. */
export function dumpAndRestore(tools: DumpTools, sourceUrl: string, targetUrl: string, database: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const dump = spawn(tools.pgDump, ['--format=custom'], { env: libpqEnv(sourceUrl, database), stdio: ['ignore', 'pipe', 'pipe'] });
    const restore = spawn(tools.pgRestore, ['--exit-on-error', '--single-transaction', `--dbname=${database}`], { env: libpqEnv(targetUrl, database), stdio: ['pipe', 'ignore', 'pipe'] });
    let dumpErr = '';
    let restoreErr = '';
    dump.stderr.on('data', (d) => (dumpErr += String(d)));
    restore.stderr.on('data', (d) => (restoreErr += String(d)));
    dump.stdout.pipe(restore.stdin);
    restore.stdin.on('error', () => undefined);
    let dumpCode: number | null | undefined;
    let restoreCode: number | null | undefined;
    const done = () => {
      if (dumpCode === undefined || restoreCode === undefined) return;
      if (dumpCode !== 0) reject(new Error(`pg_dump failed (${dumpCode}): ${dumpErr.trim().slice(0, 2000)}`));
      else if (restoreCode !== 0) reject(new Error(`pg_restore failed (${restoreCode}): ${restoreErr.trim().slice(0, 2000)}`));
      else resolve();
    };
    dump.on('error', reject);
    restore.on('error', reject);
    dump.on('close', (code) => {
      dumpCode = code;
      if (code !== 0) restore.kill();
      done();
    });
    restore.on('close', (code) => {
      restoreCode = code;
      if (code !== 0) dump.kill();
      done();
    });
  });
}
