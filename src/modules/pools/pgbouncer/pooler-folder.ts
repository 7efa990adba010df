// PgBouncer's folder: reachable by the OS user PgBouncer runs as, and owned by exactly one
// live Tenantry at a time (a lock in the folder), so a second instance started with the
// same configuration never stops or rewrites a PgBouncer that another one runs.
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { FileOwner } from './config-files.js';

/** An OS user, with the groups that decide what it may enter. */
export interface OsUser extends FileOwner {
  name: string;
  groups: number[];
}

export function lookupOsUser(name: string): OsUser {
  const id = (flag: string) => execFileSync('id', [flag, name], { encoding: 'utf8' }).trim();
  return { name, uid: Number(id('-u')), gid: Number(id('-g')), groups: id('-G').split(/\s+/).map(Number) };
}

/** Another live Tenantry holds the folder: nothing in it was touched. */
class PoolerFolderBusyError extends Error {
  override name = 'PoolerFolderBusyError';
}

export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Can `user` pass through folder `dir` (execute permission by owner, group or others)? */
async function canEnter(dir: string, user: OsUser): Promise<boolean> {
  const st = await stat(dir);
  if (user.uid === 0) return true;
  if (st.uid === user.uid) return (st.mode & 0o100) !== 0;
  if (user.groups.includes(st.gid)) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/**
 * Creates `dir` (0700) and its missing parents. When PgBouncer runs as another user
 * (`runAs`, e.g. postgres when Tenantry is root), the parents Tenantry created, and those
 * named in `ours` (TENANTRY_HOME: Tenantry's own folder, maybe created 0700 earlier), get
 * execute permission for others (0711, as the embedded server's folder), and `dir` and
 * the files PgBouncer writes itself are handed to `runAs`. Any other parent it cannot
 * enter is reported, not changed.
 */
export async function preparePoolerFolder(dir: string, files: { logFile: string; pidFile: string }, runAs?: OsUser, ours: readonly string[] = []): Promise<void> {
  const target = path.resolve(dir);
  const firstCreated = await mkdir(target, { recursive: true, mode: 0o700 });
  if (!runAs) return;
  const own = new Set(ours.map((d) => path.resolve(d)));
  if (firstCreated) {
    for (let d = path.dirname(target); d.length >= firstCreated.length; d = path.dirname(d)) own.add(d);
  }
  for (const d of own) {
    if (d === target || !target.startsWith(d + path.sep)) continue;
    const { mode } = await stat(d);
    if ((mode & 0o111) !== 0o111) await chmod(d, (mode & 0o7777) | 0o711);
  }
  for (let d = path.dirname(target); ; d = path.dirname(d)) {
    if (!(await canEnter(d, runAs))) {
      throw new Error(
        `PgBouncer runs as the "${runAs.name}" user (it refuses root), which cannot enter ${d}; ` +
          'set POOLER_DIR to a folder it can reach (e.g. /var/lib/tenantry/pgbouncer) or run Tenantry as an ordinary user',
      );
    }
    if (d === path.dirname(d)) break;
  }
  await chown(target, runAs.uid, runAs.gid);
  await chmod(target, 0o700);
  // Left by an earlier run as another user, they would stop PgBouncer from logging or starting.
  for (const file of [files.logFile, files.pidFile]) {
    await chown(file, runAs.uid, runAs.gid).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}

interface FolderOwner {
  pid: number;
  host: string;
  since: string;
}

/**
 * Takes the folder's lock (proper-lockfile: a lock directory whose mtime the holder keeps
 * fresh). A lock left by a Tenantry that died on this host is taken over at once; one
 * held by a live process fails with PoolerFolderBusyError. Returns the release function.
 */
export async function lockPoolerFolder(dir: string, onLost: (err: Error) => void): Promise<() => Promise<void>> {
  const lockPath = path.join(dir, 'tenantry.lock');
  const ownerFile = path.join(dir, 'tenantry.owner');
  const options = { lockfilePath: lockPath, realpath: false, stale: 20_000, update: 5_000, retries: 0, onCompromised: onLost };
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, options);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    const owner = JSON.parse((await readFile(ownerFile, 'utf8').catch(() => 'null')) ?? 'null') as FolderOwner | null;
    const dead = owner !== null && owner.host === hostname() && owner.pid !== process.pid && !isAlive(owner.pid);
    if (!dead) {
      const who = owner ? `pid ${owner.pid} on ${owner.host}, since ${owner.since}` : 'a process that has not said who it is';
      throw new PoolerFolderBusyError(
        `the pooler folder ${dir} belongs to another running Tenantry (${who}); ` +
          'give each instance its own POOLER_DIR and POOLER_PORT (or POOLER=none). Nothing in the folder was changed',
      );
    }
    await rm(lockPath, { recursive: true, force: true });
    release = await lockfile.lock(dir, options);
  }
  const me: FolderOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  await writeFile(ownerFile, JSON.stringify(me), { mode: 0o644 });
  return async () => {
    await rm(ownerFile, { force: true });
    await release().catch(() => undefined);
  };
}
