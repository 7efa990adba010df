// Tenantry as an operator runs it (`node --import tsx src/main.ts`) in a child process, for the
// benchmark: start-up timings, GraphQL over HTTP, /metrics, and the process's RSS.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

export interface StartTimes {
  /** From spawn to the first 200 from /health/live. */
  liveMs: number;
  /** From spawn to the first 200 from /health/ready. */
  readyMs: number;
  /** From spawn to the end of the start-up inventory pass (reported by /health/ready). */
  inventoryMs: number;
}

export class TenantryProcess {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly key: string,
    readonly output: string[],
  ) {}

  /** Starts the server and waits until it is ready and its start-up inventory has finished. */
  static async start(env: Record<string, string>): Promise<{ server: TenantryProcess; times: StartTimes }> {
    const started = performance.now();
    // BENCH_NODE_ARGS: extra node options for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/main.ts'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    const keep = (d: Buffer) => {
      output.push(String(d));
      if (output.length > 200) output.shift();
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const server = new TenantryProcess(`http://127.0.0.1:${env.PORT}`, child, env.ADMIN_API_KEY!, output);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => reject(new Error(`Tenantry exited (${code ?? signal}) while starting:\n${output.join('').slice(-3000)}`))),
    );
    exited.catch(() => undefined);
    const waitFor = async (probe: () => Promise<boolean>, what: string, timeoutMs = 1_800_000): Promise<number> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (await probe().catch(() => false)) return performance.now() - started;
        if (Date.now() > deadline) throw new Error(`Tenantry never became ${what}`);
        await Promise.race([new Promise((r) => setTimeout(r, 10)), exited]);
      }
    };
    const liveMs = await waitFor(async () => (await fetch(`${server.url}/health/live`)).ok, 'live');
    const readyMs = await waitFor(async () => (await server.internal('/health/ready')).ok, 'ready');
    const inventoryMs = await waitFor(async () => {
      const body = (await (await server.internal('/health/ready')).json()) as { inventory?: { running?: boolean; passes?: number } | null };
      return body.inventory?.running === false && (body.inventory.passes ?? 0) > 0;
    }, 'done with its start-up inventory');
    return { server, times: { liveMs, readyMs, inventoryMs } };
  }

  async gql<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<{ data?: T; errors?: { message: string }[] }> {
    const res = await fetch(`${this.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.key}`, 'x-graphql-yoga-csrf': '1' },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as { data?: T; errors?: { message: string }[] };
  }

  /** /health/ready or /metrics: in production they need an ADMIN key on the public port. */
  internal(path: '/health/ready' | '/metrics'): Promise<Response> {
    return fetch(`${this.url}${path}`, { headers: { authorization: `Bearer ${this.key}` } });
  }

  /** One value of a metric family from /metrics (the sum over its label sets). */
  async metric(name: string): Promise<number> {
    const text = await (await this.internal('/metrics')).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  }

  /** Resident set size of the server process, from /proc. */
  async rssBytes(): Promise<number> {
    const status = await readFile(`/proc/${this.child.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  }

  /** CPU time (user + system) the server process has used so far, in seconds, from /proc. */
  cpuSeconds(): Promise<number> {
    return processCpuSeconds(this.child.pid!);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

/** CPU time (user + system) process `pid` has used so far, in seconds (/proc/<pid>/stat, clock ticks of 10 ms). */
export async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // After the command name (in parentheses, which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
