import { randomUUID } from 'node:crypto';
import { inTransaction, setTenant, type Queryable } from './db.js';
import { hashPassword } from './secrets.js';
import { ADDONS, PLANS, type Plan } from './contracts/domain.js';

export interface Organization {
  id: string;
  name: string;
  plan: Plan;
  addons: string[];
  token_ttl_s: number;
}

export interface NewTenant {
  name: string;
  plan: string;
  addons: string[];
  adminEmail: string;
  adminPassword: string;
}

function checkPlan(plan: string): Plan {
  if (!(PLANS as readonly string[]).includes(plan)) throw new Error(`--plan must be one of ${PLANS.join(', ')}`);
  return plan as Plan;
}

function checkAddons(addons: string[]): string[] {
  const unknown = addons.filter((a) => !(ADDONS as readonly string[]).includes(a));
  if (unknown.length) throw new Error(`unknown add-on(s) ${unknown.join(', ')} (add-ons: ${ADDONS.join(', ')})`);
  return [...new Set(addons)];
}

/**
 * Creates an organization and its first admin in one transaction. The tenant is set before the
 * inserts, so this obeys the forced row-level security even when run as a non-superuser owner.
 */
export async function createTenant(db: Queryable, input: NewTenant): Promise<Organization> {
  const prepared = await prepareTenant(input);
  return inTransaction(db, () => insertTenant(db, prepared));
}

export interface PreparedTenant {
  id: string;
  name: string;
  plan: Plan;
  addons: string[];
  adminEmail: string;
  passwordHash: string;
}

/** Checks the input and hashes the password (slow: outside any transaction). */
export async function prepareTenant(input: NewTenant): Promise<PreparedTenant> {
  const plan = checkPlan(input.plan);
  const addons = checkAddons(input.addons);
  if (!input.adminEmail.includes('@')) throw new Error('--admin-email must be an email address');
  if (input.adminPassword.length < 8) throw new Error('--admin-password must have at least 8 characters');
  return { id: randomUUID(), name: input.name, plan, addons, adminEmail: input.adminEmail, passwordHash: await hashPassword(input.adminPassword) };
}

/** Inserts the organization and its admin inside the caller's transaction, and leaves the tenant set to it. */
export async function insertTenant(db: Queryable, tenant: PreparedTenant): Promise<Organization> {
  await setTenant(db, tenant.id);
  const { rows } = await db.query<Organization>(
    `insert into organizations (id, name, plan, addons) values ($1, $2, $3, $4)
     returning id, name, plan, addons, token_ttl_s`,
    [tenant.id, tenant.name, tenant.plan, tenant.addons],
  );
  await db.query(
    `insert into users (tenant_id, email, name, role, password_hash) values ($1, $2, $3, 'admin', $4)`,
    [tenant.id, tenant.adminEmail, 'Administrator', tenant.passwordHash],
  );
  return rows[0]!;
}

export async function updateTenant(db: Queryable, id: string, change: { plan?: string; addons?: string[] }): Promise<Organization> {
  const plan = change.plan !== undefined ? checkPlan(change.plan) : null;
  const addons = change.addons !== undefined ? checkAddons(change.addons) : null;
  const org = await inTransaction(db, async () => {
    await setTenant(db, id);
    const { rows } = await db.query<Organization>(
      `update organizations set plan = coalesce($2, plan), addons = coalesce($3, addons), updated_at = now()
        where id = $1 returning id, name, plan, addons, token_ttl_s`,
      [id, plan, addons],
    );
    return rows[0];
  });
  if (!org) throw new Error(`no organization ${id}`);
  return org;
}
