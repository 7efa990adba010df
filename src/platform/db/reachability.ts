/**
 * Tells a database that could not be reached (down, restarting, refusing connections, the
 * session cut) from a statement that failed: the first is worth a retry, the second is not.
 * Errors arrive from Prisma (the control database; its driver adapter's error is in `cause` or
 * `meta.driverAdapterError`) or from `pg` (locks, clusters), possibly wrapped in `cause`.
 */

/** Prisma's codes for "could not reach / lost the server". */
const PRISMA_UNREACHABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017']);
/** Prisma driver adapters' kinds for the same. */
const ADAPTER_UNREACHABLE = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
  'TlsConnectionError',
  'DatabaseDoesNotExist',
  'DatabaseAccessDenied',
  'AuthenticationFailed',
]);
const SOCKET_UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** SQLSTATE class 08 (connection exception), 57P01-57P03 (shut down, crashed, starting), 53300 (too many connections). */
const SQLSTATE_UNREACHABLE = /^(08...|57P0[123]|53300)$/;
/** What pg and pg-pool say when a session dies or never comes. */
const PG_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

type ErrorLike = { name?: unknown; code?: unknown; severity?: unknown; kind?: unknown; message?: unknown; cause?: unknown; meta?: { driverAdapterError?: unknown } };

function says(e: ErrorLike): boolean {
  if (typeof e.code === 'string' && (PRISMA_UNREACHABLE.has(e.code) || SOCKET_UNREACHABLE.has(e.code) || SQLSTATE_UNREACHABLE.test(e.code))) return true;
  if (typeof e.kind === 'string' && ADAPTER_UNREACHABLE.has(e.kind)) return true;
  // FATAL and PANIC end the session: whatever the code, the server is not serving this one.
  if (e.severity === 'FATAL' || e.severity === 'PANIC') return true;
  if (e.name === 'PrismaClientInitializationError') return true;
  return typeof e.message === 'string' && PG_MESSAGES.test(e.message);
}

/** True when `err` (or what it wraps) means a database server could not be reached or dropped the session. */
export function isUnreachable(err: unknown): boolean {
  let e: unknown = err;
  // A few levels: Prisma → driver adapter error → its cause.
  for (let depth = 0; depth < 6 && e !== null && typeof e === 'object'; depth++) {
    const like = e as ErrorLike;
    if (says(like)) return true;
    e = like.meta?.driverAdapterError ?? like.cause;
  }
  return false;
}

/** Whether a failure came through Prisma, i.e. from the control database (clusters and locks use pg). */
export function isFromControlClient(err: unknown): boolean {
  const name = (err as ErrorLike | null)?.name;
  return typeof name === 'string' && (name.startsWith('PrismaClient') || name === 'DriverAdapterError');
}
