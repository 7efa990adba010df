// The provisioning module's GraphQL: the provisionTenant mutation and the steps of ProvisioningState.
import './provisionTenant.js';
import './provisioningSteps.js';
