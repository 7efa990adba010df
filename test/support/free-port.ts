import { mkdirSync, openSync, closeSync, statSync, utimesSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/*
 * Ports for servers a test starts itself (PostgreSQL, PgBouncer, Redis, Tenantry), given out
 * below the kernel's ephemeral range. A port the OS picked with listen(0) comes from that
 * range, which is also where every outgoing connection (the suite opens thousands) takes its
 * local port: one taken between the pick and the server's bind failed that bind ("Address
 * already in use"). Below the range only listeners bind, and each port given out is reserved
 * across the suite's parallel files by a file created exclusively, so two files never get one.
 */

const RESERVATIONS = path.join(tmpdir(), 'tenantry-test-ports');
/** A reservation older than this is a finished run's: its port may be given out again. */
const RESERVATION_MS = 60 * 60_000;
const LOWEST = 10_000;

/** The ports below the ephemeral range: [LOWEST, its first port). */
function range(): { low: number; high: number } {
  let first = 32_768;
  try {
    first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || first;
  } catch {
    // not Linux: IANA's ephemeral range starts at 49152, Linux's default at 32768; the lower is safe for both
  }
  return { low: LOWEST, high: Math.max(first, LOWEST + 1_000) };
}

/** Takes the reservation of `port` for this run: false when another file holds it. */
function reserve(port: number): boolean {
  mkdirSync(RESERVATIONS, { recursive: true });
  const file = path.join(RESERVATIONS, String(port));
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  // An old reservation: taken over by touching it. Two files could both see it old; the
  // bind check after this one keeps them apart unless both also bind in the same instant.
  if (Date.now() - statSync(file).mtimeMs < RESERVATION_MS) return false;
  const now = new Date();
  utimesSync(file, now, now);
  return true;
}

const listen = (port: number) =>
  new Promise<Server | null>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(null));
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
const close = (servers: (Server | null)[]) => Promise.all(servers.map((s) => s && new Promise((r) => s.close(r))));

/** `count` consecutive loopback ports reserved for this file and nothing listens on right now (for POOLER_PORT with POOLER_SHARDS). */
export async function freePorts(count: number): Promise<number> {
  const { low, high } = range();
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low - count));
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if (!ports.every(reserve)) continue; // a few reservations are left taken: harmless, they lapse
    const held = await Promise.all(ports.map(listen));
    await close(held);
    if (held.every((s) => s !== null)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found below the ephemeral range`);
}

/** A loopback port reserved for this file that nothing listens on right now. */
export async function freePort(): Promise<number> {
  return freePorts(1);
}
