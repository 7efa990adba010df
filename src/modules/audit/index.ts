// The audit trail: every change and security event, recorded inside the transaction that makes it,
// and the lists that read it back (newest first, per tenant or for the fleet).
export { AuditLog, auditEventInsert, recordAuditEvent, type AuditEvent, type OperationContext } from './audit-log.js';
