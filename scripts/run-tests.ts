// `npm test`: the whole suite against a real PostgreSQL. With TEST_DATABASE_URL set
// (a superuser URL) it uses that server; otherwise it starts the embedded PostgreSQL 18
// in a temporary folder for the duration of the run.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEmbeddedServer, type EmbeddedServer } from '../src/db/embedded-server.js';
import { createLogger } from '../src/logger.js';
import { freePort } from '../test/support/free-port.js';


const filter = process.argv.slice(2);
const files = (await readdir('test'))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)))
  .map((f) => path.join('test', f));

let embedded: EmbeddedServer | undefined;
let home: string | undefined;
if (!process.env.TEST_DATABASE_URL) {
  home = await mkdtemp(path.join(tmpdir(), 'tenantry-test-'));
  embedded = await startEmbeddedServer({ home, port: await freePort(), logger: createLogger('warn') });
  process.env.TEST_DATABASE_URL = embedded.url;
  console.log(`# embedded PostgreSQL 18 for this run (${home})`);
} else {
  console.log(`# TEST_DATABASE_URL=${process.env.TEST_DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}`);
}

const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit', env: process.env });
  child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});

await embedded?.stop();
if (home) await rm(home, { recursive: true, force: true });
process.exit(code);
