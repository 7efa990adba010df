import { createServer } from 'node:net';

/** A loopback port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** `count` consecutive loopback ports nothing listens on right now (for POOLER_PORT with POOLER_SHARDS). */
export async function freePorts(count: number): Promise<number> {
  const listen = (port: number) =>
    new Promise<ReturnType<typeof createServer> | null>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(null));
      s.listen(port, '127.0.0.1', () => resolve(s));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base + count - 1 > 65_535) continue;
    const held = await Promise.all(Array.from({ length: count - 1 }, (_, i) => listen(base + 1 + i)));
    await Promise.all(held.map((s) => s && new Promise((r) => s.close(r))));
    if (held.every((s) => s !== null)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}
