import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { z } from 'zod';
import { checksumOf, type Migration } from '../../platform/db/migrations.js';
import { extensionRequirementSchema as extensionRequirement, type ExtensionPolicy } from '../extensions/index.js';

const manifestSchema = z.object({
  description: z.string(),
  /** Tables every tenant database of this version must have (readiness checks them). */
  tables: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)).default([]),
  extensions: z.object({
    required: z.array(extensionRequirement).default([]),
    optional: z.array(extensionRequirement).default([]),
  }),
});

export interface TemplateVersion {
  template: string;
  version: string;
  description: string;
  tables: string[];
  extensions: ExtensionPolicy;
  /** The SQL that brings the previous version to this one (the first version: from empty). */
  migration: Migration;
}

export interface SchemaTemplate {
  name: string;
  /** Oldest first. */
  versions: TemplateVersion[];
}

export const DEFAULT_TEMPLATE = 'default';

/**
 * Versioned tenant schemas kept in the repository:
 * `templates/<name>/<semver>/{manifest.json,migration.sql}`.
 */
export class TemplateCatalog {
  /** Use `TemplateCatalog.load(dir)`. */
  constructor(private readonly templates: Map<string, SchemaTemplate>) {}

  static async load(dir: string): Promise<TemplateCatalog> {
    const templates = new Map<string, SchemaTemplate>();
    for (const name of await subdirectories(dir)) {
      const versions: TemplateVersion[] = [];
      for (const version of await subdirectories(path.join(dir, name))) {
        if (!semver.valid(version)) throw new Error(`template ${name}: version folder "${version}" is not a semantic version`);
        const folder = path.join(dir, name, version);
        const manifest = manifestSchema.parse(JSON.parse(await readFile(path.join(folder, 'manifest.json'), 'utf8')));
        const sql = await readFile(path.join(folder, 'migration.sql'), 'utf8');
        versions.push({
          template: name,
          version,
          description: manifest.description,
          tables: manifest.tables,
          extensions: manifest.extensions,
          migration: { name: version, sql, checksum: checksumOf(sql), description: manifest.description },
        });
      }
      versions.sort((a, b) => semver.compare(a.version, b.version));
      if (versions.length > 0) templates.set(name, { name, versions });
    }
    return new TemplateCatalog(templates);
  }

  list(): SchemaTemplate[] {
    return [...this.templates.values()];
  }

  get(name: string): SchemaTemplate | undefined {
    return this.templates.get(name);
  }

  /** A version of a template; the newest when `version` is omitted. */
  resolve(name: string, version?: string | null): TemplateVersion | undefined {
    const template = this.templates.get(name);
    if (!template) return undefined;
    if (!version) return template.versions.at(-1);
    return template.versions.find((v) => v.version === version);
  }

  /** The steps after `from` up to and including `to`, oldest first. */
  stepsBetween(from: string, to: TemplateVersion): TemplateVersion[] {
    return this.stepsTo(to).filter((v) => semver.gt(v.version, from));
  }

  /** Every step from empty up to and including `target`. */
  stepsTo(target: TemplateVersion): TemplateVersion[] {
    const template = this.templates.get(target.template)!;
    return template.versions.filter((v) => semver.lte(v.version, target.version));
  }

  /** Identifies the exact SQL and policy of a version and all steps before it. */
  fingerprint(target: TemplateVersion): string {
    const hash = createHash('sha256');
    for (const step of this.stepsTo(target)) hash.update(step.migration.checksum).update(JSON.stringify(step.extensions));
    return hash.digest('hex');
  }
}

async function subdirectories(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
}
