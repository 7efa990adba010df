import { z } from 'zod';

/** One extension a template version asks for, as its manifest.json states it. */
export const extensionRequirementSchema = z.object({
  name: z.string().regex(/^[a-z0-9_-]+$/),
  minVersion: z.string().optional(),
  /** Keep it at the newest version the server offers: below that it is OUTDATED. */
  track: z.boolean().default(false),
});

export type ExtensionRequirement = z.infer<typeof extensionRequirementSchema>;

/** The extensions a tenant database answers to: its template version's. */
export interface ExtensionPolicy {
  required: ExtensionRequirement[];
  optional: ExtensionRequirement[];
}

/**
 * Where a template version's policy is found: the templates module's TemplateCatalog, which
 * sits above this module (it prepares databases with these extensions), so it is named here by
 * the one method used.
 */
export interface ExtensionPolicies {
  resolve(template: string, version?: string | null): { extensions: ExtensionPolicy } | undefined;
}

export function policyNames(policy: ExtensionPolicy): string[] {
  return [...policy.required, ...policy.optional].map((e) => e.name);
}
