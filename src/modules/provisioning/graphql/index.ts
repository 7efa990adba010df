// The provisioning module's GraphQL: the provisionTenant mutation.
import './provisionTenant.js';
