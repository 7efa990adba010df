// `npm run least-privilege-sql -- <control role> [server_version_num]`: prints the one-time SQL
// a superuser runs so Tenantry can use a role that is not superuser (README, "Security").
import { loadConfig } from '../src/config.js';
import { leastPrivilegeSetupSql } from '../src/db/least-privilege-setup.js';

const [role = 'tenantry', version = '160000'] = process.argv.slice(2);
const config = loadConfig({ ...process.env, DATABASE_URL: undefined });
const sql = leastPrivilegeSetupSql({ controlRole: role, lookupRole: config.POOLER_LOOKUP_ROLE, serverVersionNum: Number(version) });
process.stdout.write(`-- Run once as a superuser; then give Tenantry DATABASE_URL=postgresql://${role}:<password>@host/postgres\n-- and set the role's password: ALTER ROLE "${role}" PASSWORD '...';\n${sql.join('\n')}\n`);
