import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { withTenant } from '../../services/shared/db.js';
import { createTenant, type Organization } from '../../services/shared/tenants.js';
import { randomSecret, sha256 } from '../../services/shared/secrets.js';

/**
 * Test data, written as the owner with the tenant set (the owner obeys the forced RLS too).
 * Tests that exercise the API build their data through the API instead.
 */
export const asTenant = withTenant;

export interface TestOrg extends Organization {
  adminEmail: string;
  adminPassword: string;
}

export async function createOrg(owner: pg.Pool, plan: 'starter' | 'team' | 'unlimited' = 'unlimited', addons: string[] = []): Promise<TestOrg> {
  const adminEmail = `admin-${randomUUID().slice(0, 8)}@example.com`;
  const adminPassword = 'correct horse battery staple';
  const db = await owner.connect();
  try {
    const org = await createTenant(db, { name: `Org ${adminEmail}`, plan, addons, adminEmail, adminPassword });
    return { ...org, adminEmail, adminPassword };
  } finally {
    db.release();
  }
}

export interface TestDevice {
  id: string;
  token: string;
  tenantId: string;
  assetId: string | null;
  siteId: string | null;
}

export async function createDevice(
  owner: pg.Pool,
  tenantId: string,
  options: { kind?: 'tracker' | 'attendance'; assetId?: string | null; siteId?: string | null; name?: string } = {},
): Promise<TestDevice> {
  const token = randomSecret(32);
  const id = await asTenant(owner, tenantId, async (db) => {
    const { rows } = await db.query<{ id: string }>(
      `insert into devices (tenant_id, name, kind, token_hash, asset_id, site_id) values ($1, $2, $3, $4, $5, $6) returning id`,
      [tenantId, options.name ?? 'tracker', options.kind ?? 'tracker', sha256(token), options.assetId ?? null, options.siteId ?? null],
    );
    return rows[0]!.id;
  });
  return { id, token, tenantId, assetId: options.assetId ?? null, siteId: options.siteId ?? null };
}

export async function createAsset(owner: pg.Pool, tenantId: string, name = 'Excavator'): Promise<string> {
  return asTenant(owner, tenantId, async (db) => {
    const { rows } = await db.query<{ id: string }>('insert into assets (tenant_id, name) values ($1, $2) returning id', [tenantId, name]);
    return rows[0]!.id;
  });
}

export async function createEmployee(owner: pg.Pool, tenantId: string, fields: { name?: string; badge_code?: string } = {}): Promise<string> {
  return asTenant(owner, tenantId, async (db) => {
    const { rows } = await db.query<{ id: string }>(
      'insert into employees (tenant_id, name, badge_code) values ($1, $2, $3) returning id',
      [tenantId, fields.name ?? 'Ada', fields.badge_code ?? null],
    );
    return rows[0]!.id;
  });
}
