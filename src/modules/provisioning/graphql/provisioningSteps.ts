import { PROVISION_STEPS, type ProvisionStep } from '../provisioning-steps.js';
import { builder } from '../../../graphql/builder.js';
import { ProvisioningStateRef } from '../../tenants/graphql/index.js';

const STEP_DESCRIPTIONS: Record<ProvisionStep | 'INTERRUPTED', string> = {
  ROLE: 'The tenant\'s login role, with its connection limit.',
  TEMPLATE: 'The template database its database is copied from, prepared on the cluster if need be.',
  DATABASE: 'Its database.',
  ACCESS: 'Who may connect to its database, the pooler\'s login, and its tables handed to its role (docs/security.md).',
  SCHEMA_VERSION: 'Its __SchemaVersion record of the template applied.',
  CREDENTIALS: 'Its password, set and handed over once.',
  INTERRUPTED: 'Only as failedStep: the server stopped while provisioning it, and recovery rolled it back (the step it was in is not known).',
};

const ProvisionStepEnum = builder.enumType('ProvisionStep', {
  description: 'A step of provisioning a tenant, in the order they run.',
  values: Object.fromEntries([...PROVISION_STEPS, 'INTERRUPTED' as const].map((s) => [s, { description: STEP_DESCRIPTIONS[s] }])) as Record<
    ProvisionStep | 'INTERRUPTED',
    { description: string }
  >,
});

builder.objectFields(ProvisioningStateRef, (t) => ({
  lastCompletedStep: t.field({
    type: ProvisionStepEnum,
    nullable: true,
    description: 'The last step done; null before the first.',
    resolve: (tenant) => tenant.provisionStep as ProvisionStep | null,
  }),
  failedStep: t.field({
    type: ProvisionStepEnum,
    nullable: true,
    description: 'The step that failed (the tenant is FAILED, see error); null otherwise.',
    resolve: (tenant) => tenant.failedStep as ProvisionStep | 'INTERRUPTED' | null,
  }),
}));
