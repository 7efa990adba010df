// Writing PgBouncer's two files so that it never reads a half-written one.
import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type { PgBouncerFiles } from './pgbouncer-config.js';

/** PgBouncer runs as another OS user (postgres) when we are root: it must own its files. */
export interface FileOwner {
  uid: number;
  gid: number;
}

/** The ini holds no secrets; the auth file holds the auth user's password and stays private to PgBouncer. */
const INI_MODE = 0o644;
const AUTH_MODE = 0o600;

/** Temp file in the same folder (same filesystem), fsync, rename over, fsync the folder (`sync: false`: no fsync). */
async function writeFileAtomic(file: string, data: string, mode: number, owner?: FileOwner, sync = true): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data, 'utf8');
    if (owner) await fh.chown(owner.uid, owner.gid);
    await fh.chmod(mode); // the umask may have narrowed it
    if (sync) await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (!sync) return;
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** A failure of the file system (it carries an errno code), as opposed to a bug. */
export function asFileSystemError(err: unknown): (NodeJS.ErrnoException & { code: string }) | null {
  const e = err as NodeJS.ErrnoException;
  return e instanceof Error && typeof e.code === 'string' && typeof e.syscall === 'string' ? (e as NodeJS.ErrnoException & { code: string }) : null;
}

/**
 * Why `file` could not be written, in words that stay the same from one try to the next
 * (no temporary file name), so a failure that persists is recorded once, not per retry.
 */
export function describeWriteFailure(file: string, err: NodeJS.ErrnoException & { code: string }): string {
  const words = err.errno === undefined ? undefined : getSystemErrorMap().get(err.errno)?.[1];
  return `${file} cannot be written (${err.code}${words ? `, ${words}` : ''}, in ${err.syscall})`;
}

/** The auth file changes only when PgBouncer (re)starts: its two logins are fixed for a process's life. */
export async function writeAuthFile(files: PgBouncerFiles, text: string, owner?: FileOwner): Promise<void> {
  await writeFileAtomic(files.authFile, text, AUTH_MODE, owner);
}

/**
 * The ini, whole (renamed into place). `sync: false` for the applies of a running PgBouncer: it
 * reads the file at RELOAD from the page cache, and only an operating-system crash could lose an
 * unsynced file, after which Tenantry starts again and writes every file, synced, from the
 * control database before PgBouncer starts (PoolSync.writeInitial). So a pool change does not
 * wait for the disk (the fsync of a shard's ini was a third of the apply on a busy disk).
 */
export async function writeIni(files: PgBouncerFiles, ini: string, owner?: FileOwner, sync = true): Promise<void> {
  await writeFileAtomic(files.ini, ini, INI_MODE, owner, sync);
}

/** The size of PgBouncer's log now (null: it cannot be read), so that what a RELOAD logs can be read alone. */
export async function logSize(file: string): Promise<number | null> {
  try {
    return (await stat(file)).size;
  } catch {
    return null;
  }
}

/**
 * Whether PgBouncer logged a refused configuration since `from` (a RELOAD logs it before it
 * answers): 'refused', 'clean', or 'unknown' when the log cannot be read.
 */
export async function configVerdictSince(file: string, from: number): Promise<'refused' | 'clean' | 'unknown'> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      if (size < from) return 'unknown'; // truncated or rotated meanwhile
      const length = Math.min(size - from, 1 << 20);
      const buffer = Buffer.alloc(length);
      await fh.read(buffer, 0, length, from);
      const text = buffer.toString('utf8');
      return /config file loading failed| in configuration \(/.test(text) ? 'refused' : 'clean';
    } finally {
      await fh.close();
    }
  } catch {
    return 'unknown';
  }
}

/** Removes the last good ini copies earlier versions kept beside the ini (and, before auth_query, the auth file's). */
export async function forgetLastGood(files: PgBouncerFiles): Promise<void> {
  await rm(files.lastGoodIni, { force: true });
  await rm(path.join(files.dir, 'userlist.txt.last-good'), { force: true });
}
