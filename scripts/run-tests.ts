// `npm test`: the whole suite against a real PostgreSQL. With TEST_DATABASE_URL set
// (a superuser URL) it uses that server; otherwise it starts the embedded PostgreSQL 18
// in a temporary folder for the duration of the run. With TEST_LEAST_PRIVILEGE=1 the service
// under test runs as a role that is not superuser (set up here with the same SQL the README
// gives operators); tests still inspect the server as the superuser. With TEST_SCOPE=server the
// files marked `// @test-scope once` are left out. Arguments filter files by name. Files marked
// `// @test-slow` (in their first lines) start first: the run takes TEST_CONCURRENCY files at a
// time, and a long file started last would run alone at the end.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedServer, type EmbeddedServer } from '../src/platform/embedded/embedded-server.js';
import { leastPrivilegeSetupSql } from '../src/platform/db/least-privilege-setup.js';
import { generatePassword, scramSha256Verifier } from '../src/modules/tenants/index.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { freePort } from '../test/support/free-port.js';

/** Made once per server and shared by every Tenantry on it (kept by design, so not a leftover). */
const lookupRole = loadConfig({}).POOLER_LOOKUP_ROLE;


const filter = process.argv.slice(2);
// TEST_SCOPE=server: only the files whose outcome can depend on the server under test or on the
// control plane's privileges (CI runs everything once, then this scope on the other configurations).
const serverScope = process.env.TEST_SCOPE === 'server';
const slow: string[] = [];
const rest: string[] = [];
for (const f of (await readdir('test')).sort()) {
  if (!f.endsWith('.test.ts') || (filter.length > 0 && !filter.some((x) => f.includes(x)))) continue;
  const file = path.join('test', f);
  const text = await readFile(file, 'utf8');
  const head = text.slice(0, 400);
  if (serverScope && /^\/\/ @test-scope once/m.test(head)) continue;
  (/^\/\/ @test-slow/m.test(head) ? slow : rest).push(file);
}
const files = [...slow, ...rest];

let embedded: EmbeddedServer | undefined;
let home: string | undefined;
if (!process.env.TEST_DATABASE_URL) {
  home = await mkdtemp(path.join(tmpdir(), 'tenantry-test-'));
  // Thrown away at the end of the run: durability buys nothing (a killed server loses nothing
  // the operating system has, so the crash tests are unaffected), and CREATE DATABASE is much
  // cheaper without fsync.
  const settings = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' };
  embedded = await startEmbeddedServer({ home, port: await freePort(), logger: createLogger('warn'), settings });
  process.env.TEST_DATABASE_URL = embedded.url;
  console.log(`# embedded PostgreSQL 18 for this run, fsync off (${home})`);
} else {
  console.log(`# TEST_DATABASE_URL=${process.env.TEST_DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}`);
}

if (process.env.TEST_LEAST_PRIVILEGE === '1') {
  const role = 'tenantry_lp_test';
  const password = generatePassword();
  const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await admin.connect();
  const version = Number((await admin.query('SHOW server_version_num')).rows[0].server_version_num);
  for (const statement of leastPrivilegeSetupSql({ controlRole: role, passwordVerifier: scramSha256Verifier(password), lookupRole, serverVersionNum: version })) {
    await admin.query(statement);
  }
  await admin.end();
  const url = new URL(process.env.TEST_DATABASE_URL);
  url.username = role;
  url.password = password;
  process.env.TEST_CONTROL_PLANE_URL = url.toString();
  console.log(`# least privilege: the service runs as ${role} (not superuser)`);
}

/** Every database and role on the server, as `database x` / `role y`. */
async function serverObjects(url: string): Promise<Set<string>> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ o: string }>(
      `SELECT 'database ' || datname AS o FROM pg_catalog.pg_database UNION ALL SELECT 'role ' || rolname FROM pg_catalog.pg_roles`,
    );
    return new Set(rows.map((r) => r.o));
  } finally {
    await admin.end();
  }
}
// On the run's own server nothing else creates databases or roles: whatever the files leave
// behind is a test that does not clean up (and would break a second run on a shared server).
const before = embedded ? await serverObjects(embedded.url) : null;

// TAP on stdout as before, and each file's time into a file of its own (printed at the end).
const timesDir = await mkdtemp(path.join(tmpdir(), 'tenantry-test-times-'));
const timesFile = path.join(timesDir, 'files.txt');
const reporters = ['--test-reporter=tap', '--test-reporter-destination=stdout', '--test-reporter=./scripts/test-file-times.mjs', `--test-reporter-destination=${timesFile}`];
let code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 3}`, ...reporters, ...files], { stdio: 'inherit', env: process.env });
  child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});
const slowest = (await readFile(timesFile, 'utf8').catch(() => '')).split('\n').filter(Boolean).slice(0, 15);
if (slowest.length) console.log(`# the slowest files (seconds, each from its start to its end):\n${slowest.map((l) => `# ${l.replace(process.cwd() + '/', '')}`).join('\n')}`);
await rm(timesDir, { recursive: true, force: true });

if (embedded && before) {
  const left = [...(await serverObjects(embedded.url))].filter((o) => !before.has(o) && o !== `role ${lookupRole}`).sort();
  if (left.length > 0) {
    console.log(`# the test files left ${left.length} databases and roles behind:\n${left.map((o) => `#   ${o}`).join('\n')}`);
    code = 1;
  } else {
    console.log('# nothing left behind on the server');
  }
}

await embedded?.stop();
if (home) await rm(home, { recursive: true, force: true });
process.exit(code);
