import { EntitySchema } from '@mikro-orm/core';

/**
 * ORM entities for the bookkeeping tables the CLI and service read and update row by row.
 * Bulk record writes (unified tables) go through set-based SQL on the same MikroORM connection
 * (see engine/writer.ts): one INSERT … ON CONFLICT per batch is what makes re-syncs idempotent and fast.
 */
export interface Organization {
  id: string;
  name: string;
  defaultCountry: string;
  timezone: string;
  settings: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}
export const OrganizationEntity = new EntitySchema<Organization>({
  name: 'Organization',
  tableName: 'organizations',
  properties: {
    id: { type: 'string', primary: true },
    name: { type: 'string' },
    defaultCountry: { type: 'string', fieldName: 'default_country' },
    timezone: { type: 'string' },
    settings: { type: 'json' },
    createdAt: { type: 'Date', fieldName: 'created_at', onCreate: () => new Date() },
    updatedAt: { type: 'Date', fieldName: 'updated_at', onCreate: () => new Date(), onUpdate: () => new Date() },
  },
});

export interface SyncRun {
  id: string;
  organizationId: string;
  connector: string;
  connection: string;
  correlationId: string;
  status: 'running' | 'succeeded' | 'partial' | 'failed' | 'abandoned';
  fullRefresh: boolean;
  startedAt: Date;
  heartbeatAt: Date;
  finishedAt?: Date | null;
  host?: string | null;
  pid?: number | null;
  specVersion?: string | null;
  requests: number;
  recordsProcessed: number;
  recordsWritten: number;
  deadLetters: number;
  counts: Record<string, unknown>;
  errorCode?: string | null;
  error?: string | null;
}
export const SyncRunEntity = new EntitySchema<SyncRun>({
  name: 'SyncRun',
  tableName: 'sync_runs',
  properties: {
    id: { type: 'uuid', primary: true },
    organizationId: { type: 'string', fieldName: 'organization_id' },
    connector: { type: 'string' },
    connection: { type: 'string' },
    correlationId: { type: 'string', fieldName: 'correlation_id' },
    status: { type: 'string' },
    fullRefresh: { type: 'boolean', fieldName: 'full_refresh' },
    startedAt: { type: 'Date', fieldName: 'started_at' },
    heartbeatAt: { type: 'Date', fieldName: 'heartbeat_at' },
    finishedAt: { type: 'Date', fieldName: 'finished_at', nullable: true },
    host: { type: 'string', nullable: true },
    pid: { type: 'integer', nullable: true },
    specVersion: { type: 'string', fieldName: 'spec_version', nullable: true },
    requests: { type: 'integer' },
    recordsProcessed: { type: 'bigint', fieldName: 'records_processed' },
    recordsWritten: { type: 'bigint', fieldName: 'records_written' },
    deadLetters: { type: 'integer', fieldName: 'dead_letters' },
    counts: { type: 'json' },
    errorCode: { type: 'string', fieldName: 'error_code', nullable: true },
    error: { type: 'text', nullable: true },
  },
});

export interface SyncError {
  id: string;
  organizationId: string;
  connector: string;
  connection: string;
  stream?: string | null;
  syncRunId?: string | null;
  errorClass: string;
  errorCode: string;
  message: string;
  details: Record<string, unknown>;
  recordKey?: string | null;
  payload?: unknown;
  specVersion?: string | null;
  retryCount: number;
  resolved: boolean;
  resolvedAt?: Date | null;
  resolution?: string | null;
  createdAt: Date;
  updatedAt: Date;
}
export const SyncErrorEntity = new EntitySchema<SyncError>({
  name: 'SyncError',
  tableName: 'sync_errors',
  properties: {
    id: { type: 'uuid', primary: true },
    organizationId: { type: 'string', fieldName: 'organization_id' },
    connector: { type: 'string' },
    connection: { type: 'string' },
    stream: { type: 'string', nullable: true },
    syncRunId: { type: 'uuid', fieldName: 'sync_run_id', nullable: true },
    errorClass: { type: 'string', fieldName: 'error_class' },
    errorCode: { type: 'string', fieldName: 'error_code' },
    message: { type: 'text' },
    details: { type: 'json' },
    recordKey: { type: 'string', fieldName: 'record_key', nullable: true },
    payload: { type: 'json', nullable: true },
    specVersion: { type: 'string', fieldName: 'spec_version', nullable: true },
    retryCount: { type: 'integer', fieldName: 'retry_count' },
    resolved: { type: 'boolean' },
    resolvedAt: { type: 'Date', fieldName: 'resolved_at', nullable: true },
    resolution: { type: 'string', nullable: true },
    createdAt: { type: 'Date', fieldName: 'created_at', onCreate: () => new Date() },
    updatedAt: { type: 'Date', fieldName: 'updated_at', onCreate: () => new Date(), onUpdate: () => new Date() },
  },
});

export const entities = [OrganizationEntity, SyncRunEntity, SyncErrorEntity];
