// `npm run least-privilege-sql -- <control role> [server_version_num]`: prints the one-time SQL
// a superuser runs so Tenantry can use a role that is not superuser (README, "Security").
// `npm run -s least-privilege-sql -- <control role> --existing`, with DATABASE_URL a superuser's
// URL (and CONTROL_DATABASE, POOLER_* as Tenantry has them): reads an install that ran
// as a superuser and prints the psql script that also hands over what it made (README,
// "Switching an existing install to a least-privilege role"); pipe it to psql.
import { loadConfig } from '../src/platform/config.js';
import { leastPrivilegeSetupSql } from '../src/platform/db/least-privilege-setup.js';
import { readSwitchPlan, switchScript } from '../src/platform/db/least-privilege-switch.js';

const args = process.argv.slice(2);
const existing = args.includes('--existing');
const [role = 'tenantry', version = '160000'] = args.filter((a) => a !== '--existing');

if (existing) {
  const config = loadConfig(process.env);
  if (!config.DATABASE_URL) {
    process.stderr.write('--existing reads the install: set DATABASE_URL to a superuser\'s URL of its server (and CONTROL_DATABASE as Tenantry has it)\n');
    process.exit(2);
  }
  const plan = await readSwitchPlan(config.DATABASE_URL, {
    role,
    controlDatabase: config.CONTROL_DATABASE,
    lookupRole: config.POOLER_LOOKUP_ROLE,
    authUser: config.POOLER_AUTH_USER ?? `${config.CONTROL_DATABASE}_pooler`,
  }).catch((err: Error) => {
    process.stderr.write(`least-privilege-sql --existing: ${err.message}\n`);
    process.exit(1);
  });
  process.stdout.write(switchScript(plan));
} else {
  const config = loadConfig({ ...process.env, DATABASE_URL: undefined });
  const sql = leastPrivilegeSetupSql({ controlRole: role, lookupRole: config.POOLER_LOOKUP_ROLE, serverVersionNum: Number(version) });
  process.stdout.write(`-- Run once as a superuser; then give Tenantry DATABASE_URL=postgresql://${role}:<password>@host/postgres\n-- and set the role's password: ALTER ROLE "${role}" PASSWORD '...';\n${sql.join('\n')}\n`);
}
