import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface Replica {
  child: ChildProcess;
  url: string;
  output: string[];
  /** Resolves with the point the process stopped at (REPLICA_PAUSE_AT). */
  paused: Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * A Tenantry in a child process (test/support/replica-process.ts), serving once this resolves.
 * `nodeFlags` go to node (e.g. --expose-gc); `ipc` opens the channel replica-process answers on;
 * `processEnv` adds to the process's environment (REPLICA_AUTH_DELAY_MS).
 */
export async function spawnReplica(
  env: Record<string, string>,
  pauseAt?: string,
  options: { nodeFlags?: string[]; ipc?: boolean; processEnv?: Record<string, string> } = {},
): Promise<Replica> {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), '--import', 'tsx', 'test/support/replica-process.ts'], {
    env: { ...process.env, ...options.processEnv, REPLICA_ENV: JSON.stringify(env), ...(pauseAt ? { REPLICA_PAUSE_AT: pauseAt } : {}) },
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stderr!.on('data', (d) => output.push(String(d)));
  const lines = createInterface({ input: child.stdout! });
  let onPaused: (point: string) => void = () => undefined;
  const paused = new Promise<string>((resolve) => (onPaused = resolve));
  const exited = once(child, 'exit');
  const ready = await Promise.race([
    new Promise<{ url: string }>((resolve) =>
      lines.on('line', (line) => {
        output.push(line);
        if (line.startsWith('REPLICA ')) resolve(JSON.parse(line.slice('REPLICA '.length)));
        if (line.startsWith('PAUSED ')) onPaused(line.slice('PAUSED '.length));
      }),
    ),
    exited.then(() => {
      throw new Error(`replica exited before serving:\n${output.join('\n')}`);
    }),
  ]);
  return {
    child,
    url: ready.url,
    output,
    paused,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}
