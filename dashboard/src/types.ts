export type Role = 'ADMIN' | 'TENANT_ADMIN' | 'TENANT_READER';

export interface Usage {
  current: number;
  max: number;
  usagePercent: number;
  pooled: number | null;
  direct: number | null;
  poolerIdle: number | null;
  peak24h: number;
  sampledAt: string;
  tenantSlug: string;
}

export interface QuotaSummary { maxConnections: number; updatedAt: string; updatedBy: string }

export interface TenantRow {
  id: string;
  slug: string;
  displayName: string;
  status: string;
  quota: QuotaSummary | null;
  usage: Usage | null;
}

export interface UsagePoint { minuteStartAt: string; peakConnections: number; maxConnections: number }

export interface QuotaChange { changedAt: string; actor: string; oldMaxConnections: number | null; newMaxConnections: number; reason: string | null }

export interface Operation {
  id: string; kind: string; status: string; template: string; targetVersion: string | null;
  total: number; done: number; succeeded: number; failed: number; createdAt: string; createdBy: string;
}
