// The audit module's GraphQL: the AuditEvent node and the auditEvents query.
import './AuditEvent.js';

export { AuditEventConnectionRef, AuditEventRef, auditPage } from './AuditEvent.js';
