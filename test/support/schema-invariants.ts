import { readdirSync } from 'node:fs';
import type { Queryable } from '../../services/shared/db.js';
import { MIGRATIONS_DIR } from '../../services/shared/migrate.js';
import { SERVICE_DB_ROLES } from '../../services/shared/config.js';

/**
 * What every migrated database must satisfy, on both paths (plain PostgreSQL and TimescaleDB), for
 * whatever migrations exist: each check reads the catalogs rather than a list of our tables, so a new
 * migration is held to it as soon as it is added. Each returns its violations (empty when it holds),
 * so that a failing test names them.
 */

const SERVICE_ROLES = Object.values(SERVICE_DB_ROLES);

/** Tables that every service may read whatever the tenant: built-in reference data, no tenant's. */
const REFERENCE_TABLES = ['roles'];

/** Every migration file's name as the runner records it (`001.foundation`). */
export function migrationNames(): string[] {
  return readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).map((f) => f.slice(0, -'.sql'.length)).sort();
}

async function rows<T extends Record<string, unknown>>(db: Queryable, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await db.query<T>(sql, params)).rows;
}

export async function timescaleInstalled(db: Queryable): Promise<boolean> {
  const [row] = await rows<{ installed: boolean }>(db, `select exists (select from pg_extension where extname = 'timescaledb') as installed`);
  return row!.installed;
}

/** Tenant tables (a `tenant_id` column, or `organizations`) whose row security is not enabled, forced, and keyed on app_tenant(). */
export async function tenantTablesWithoutForcedRls(db: Queryable): Promise<string[]> {
  const found = await rows<{ name: string }>(db, `
    select c.relname as name from pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
       and (c.relname = 'organizations'
            or exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped))
       and c.relname not in (select name from time_series_tables)
       and not (c.relrowsecurity and c.relforcerowsecurity
                and exists (select from pg_policy p where p.polrelid = c.oid and p.polroles = '{0}'
                              and pg_get_expr(p.polqual, p.polrelid) like '%app_tenant()%'))
     order by 1`);
  return found.map((r) => r.name);
}

/** Anything in this database owned by a service role, and any role attribute or membership beyond login. */
export async function serviceRoleExcesses(db: Queryable): Promise<string[]> {
  const owned = await rows<{ what: string }>(db, `
    select o.kind || ' ' || o.name || ' owned by ' || r.rolname as what from (
      select 'relation', c.oid::regclass::text, c.relowner from pg_class c
      union all select 'function', p.oid::regprocedure::text, p.proowner from pg_proc p
      union all select 'type', t.oid::regtype::text, t.typowner from pg_type t
      union all select 'schema', n.nspname::text, n.nspowner from pg_namespace n
      union all select 'database', d.datname::text, d.datdba from pg_database d
    ) o (kind, name, owner) join pg_roles r on r.oid = o.owner
     where r.rolname = any ($1) order by 1`, [SERVICE_ROLES]);
  const attributes = await rows<{ what: string }>(db, `
    select r.rolname || ' has ' || a.attr as what from pg_roles r
     cross join lateral (values ('superuser', r.rolsuper), ('bypassrls', r.rolbypassrls), ('createrole', r.rolcreaterole),
                                ('createdb', r.rolcreatedb), ('replication', r.rolreplication)) as a (attr, granted)
     where r.rolname = any ($1) and a.granted
    union all
    select r.rolname || ' is a member of ' || g.rolname from pg_auth_members m
      join pg_roles r on r.oid = m.member join pg_roles g on g.oid = m.roleid
     where r.rolname = any ($1)
     order by 1`, [SERVICE_ROLES]);
  const present = await rows<{ rolname: string }>(db, 'select rolname from pg_roles where rolname = any ($1)', [SERVICE_ROLES]);
  const absent = SERVICE_ROLES.filter((role) => !present.some((r) => r.rolname === role)).map((role) => `${role} does not exist`);
  return [...absent, ...owned.map((r) => r.what), ...attributes.map((r) => r.what)];
}

/**
 * Column-level privileges on a time-series table or a hypertable. TimescaleDB copies them to the
 * compressed table, where they fail; the services get narrow access through views and functions.
 */
export async function columnGrantsOnTimeSeries(db: Queryable): Promise<string[]> {
  const hypertables = (await timescaleInstalled(db))
    ? `union select format('%I.%I', hypertable_schema, hypertable_name)::regclass from timescaledb_information.hypertables`
    : '';
  const found = await rows<{ what: string }>(db, `
    with tables (rel) as (select to_regclass(name) from time_series_tables ${hypertables})
    select t.rel::text || '.' || a.attname || ' granted to ' || coalesce(nullif(x.grantee, 0)::regrole::text, 'public')
           || ' (' || x.privilege_type || ')' as what
      from tables t join pg_attribute a on a.attrelid = t.rel
     cross join lateral aclexplode(a.attacl) x
     order by 1`);
  return found.map((r) => r.what);
}

const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];

/**
 * Every privilege a service role holds on a time-series table, `role: privilege on table`. Column
 * privileges count (`has_any_column_privilege`), so nothing narrower hides.
 */
export async function servicePrivilegesOnTimeSeries(db: Queryable): Promise<string[]> {
  const found = await rows<{ what: string }>(db, `
    select r || ': ' || p || ' on ' || t.name as what
      from time_series_tables t, unnest($1::text[]) r, unnest($2::text[]) p
     where case when p in ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') then has_any_column_privilege(r, to_regclass(t.name), p)
                else has_table_privilege(r, to_regclass(t.name), p) end
     order by 1`, [SERVICE_ROLES, TABLE_PRIVILEGES]);
  return found.map((r) => r.what);
}

/**
 * Partitions, chunks, compressed chunks and compressed hypertables of the time series that a service
 * role could read or change directly (inserting through the parent reaches them; nothing else may).
 */
export async function servicePrivilegesOnTimeSeriesStorage(db: Queryable): Promise<string[]> {
  const compressed = (await timescaleInstalled(db))
    ? `union select to_regclass(format('%I.%I', schema_name, table_name)) from _timescaledb_catalog.chunk
       union select to_regclass(format('%I.%I', schema_name, table_name)) from _timescaledb_catalog.hypertable where schema_name <> 'public'`
    : '';
  const found = await rows<{ what: string }>(db, `
    with recursive descendants (rel) as (
      select i.inhrelid from pg_inherits i where i.inhparent in (select to_regclass(name) from time_series_tables)
      union select i.inhrelid from pg_inherits i join descendants d on i.inhparent = d.rel),
    storage (rel) as (select rel from descendants ${compressed})
    select r || ': ' || p || ' on ' || s.rel::regclass::text as what
      from storage s, unnest($1::text[]) r, unnest($2::text[]) p
     where case when p in ('SELECT', 'UPDATE', 'REFERENCES') then has_any_column_privilege(r, s.rel, p)
                else has_table_privilege(r, s.rel, p) end
    union all
    select 'no partition or chunk of the time series found to check' where not exists (select from storage)
     order by 1`, [SERVICE_ROLES, ['SELECT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']]);
  return found.map((r) => r.what);
}

/**
 * Relations the API role can read that could show it another tenant's rows: a table without forced
 * row security (other than the reference tables), or a view that is not a security barrier filtering
 * on app_tenant().
 */
export async function apiReadableWithoutTenantFilter(db: Queryable): Promise<string[]> {
  const found = await rows<{ what: string }>(db, `
    select c.relname || case c.relkind when 'v' then ' (view)' else '' end as what from pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
       and has_any_column_privilege($1, c.oid, 'SELECT')
       and c.relname <> all ($2)
       and not case when c.relkind = 'v'
                    then coalesce('security_barrier=true' = any (c.reloptions), false)
                         and pg_get_viewdef(c.oid) like '%app_tenant()%'
                    else c.relkind in ('r', 'p') and c.relrowsecurity and c.relforcerowsecurity end
     order by 1`, [SERVICE_DB_ROLES.api, REFERENCE_TABLES]);
  return found.map((r) => r.what);
}

/** Security-definer functions that anyone may call, or that run without a fixed search_path. */
export async function openSecurityDefinerFunctions(db: Queryable): Promise<string[]> {
  const found = await rows<{ what: string }>(db, `
    select p.oid::regprocedure::text || case when exists (
             select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x where x.grantee = 0)
           then ' is executable by PUBLIC' else ' has no fixed search_path' end as what
      from pg_proc p
     where p.pronamespace = 'public'::regnamespace and p.prosecdef
       and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
       and (exists (select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x where x.grantee = 0)
            or not exists (select from unnest(p.proconfig) c where c like 'search_path=%'))
     order by 1`);
  return found.map((r) => r.what);
}

/**
 * Extension functions in `public` (TimescaleDB's) that each service role may execute, `role: function`.
 * Migration 001 revokes them from PUBLIC; only what a role's queries call is granted back.
 */
export async function extensionFunctionsExecutable(db: Queryable): Promise<string[]> {
  const found = await rows<{ what: string }>(db, `
    select r || ': ' || p.oid::regprocedure::text as what
      from pg_proc p join pg_depend d on d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e',
           unnest($1::text[]) r
     where p.pronamespace = 'public'::regnamespace and has_function_privilege(r, p.oid, 'EXECUTE')
     order by 1`, [SERVICE_ROLES]);
  return found.map((r) => r.what);
}

/** The timeouts every service role must carry in this database (migration 011), in milliseconds at most. */
const ROLE_TIMEOUT_BOUNDS_MS: Record<string, Record<string, number>> = {
  [SERVICE_DB_ROLES.api]: { statement_timeout: 10_000, idle_in_transaction_session_timeout: 60_000 },
  [SERVICE_DB_ROLES.ingest]: { statement_timeout: 120_000, idle_in_transaction_session_timeout: 300_000 },
  [SERVICE_DB_ROLES.worker]: { statement_timeout: 300_000, idle_in_transaction_session_timeout: 300_000 },
};

/**
 * Service roles without a statement or idle-in-transaction timeout in this database (set per database
 * or for the role), or with one of 0 or above its bound: one tenant's heavy query must not hold a
 * connection for long.
 */
export async function serviceRolesWithoutTimeouts(db: Queryable): Promise<string[]> {
  const found = await rows<{ role: string; name: string; value: string }>(db, `
    select r.rolname as role, split_part(c, '=', 1) as name, split_part(c, '=', 2) as value
      from pg_roles r
      join pg_db_role_setting s on s.setrole = r.oid and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
     cross join unnest(s.setconfig) c
     where r.rolname = any ($1)
     order by s.setdatabase = 0`, [SERVICE_ROLES]);
  const violations: string[] = [];
  for (const [role, bounds] of Object.entries(ROLE_TIMEOUT_BOUNDS_MS)) {
    for (const [name, maxMs] of Object.entries(bounds)) {
      // The database's own setting wins over the role-wide one, as at login.
      const value = found.find((f) => f.role === role && f.name === name)?.value;
      const ms = value === undefined ? null : durationMs(value);
      if (ms === null || ms <= 0 || ms > maxMs) violations.push(`${role} ${name} = ${value ?? 'unset'}`);
    }
  }
  return violations;
}

const UNIT_MS: Record<string, number> = { '': 1, ms: 1, s: 1000, min: 60_000, h: 3_600_000 };

function durationMs(value: string): number | null {
  const match = /^(\d+)\s*(ms|s|min|h)?$/.exec(value.trim());
  return match ? Number(match[1]) * UNIT_MS[match[2] ?? '']! : null;
}

/** Every check above, by name: `expect(await violations(db)).toEqual({})` names what broke. */
export async function invariantViolations(db: Queryable): Promise<Record<string, string[]>> {
  const checks = {
    tenantTablesWithoutForcedRls,
    serviceRoleExcesses,
    columnGrantsOnTimeSeries,
    servicePrivilegesOnTimeSeriesStorage,
    apiReadableWithoutTenantFilter,
    openSecurityDefinerFunctions,
    serviceRolesWithoutTimeouts,
  };
  const result: Record<string, string[]> = {};
  for (const [name, check] of Object.entries(checks)) {
    const found = await check(db);
    if (found.length) result[name] = found;
  }
  return result;
}

/**
 * The whole privilege state of the schema, one sorted line per fact: table, column, function, schema
 * and default privileges, row-security flags and policies, owners. Two databases with equal lines are
 * in the same privilege state, however their histories got there. Partitions (dated) are left out.
 */
export async function privilegeState(db: Queryable): Promise<string[]> {
  const found = await rows<{ line: string }>(db, `
    with grants (kind, obj, acl, owner, defaults) as (
      select 'table', c.oid::regclass::text, c.relacl, c.relowner, case c.relkind when 'S' then 's' else 'r' end
        from pg_class c where c.relnamespace = 'public'::regnamespace and not c.relispartition
                          and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
      union all
      select 'function', p.oid::regprocedure::text, p.proacl, p.proowner, 'f'
        from pg_proc p where p.pronamespace = 'public'::regnamespace
      union all
      select 'schema', n.nspname::text, n.nspacl, n.nspowner, 'n' from pg_namespace n where n.nspname = 'public'
    )
    select g.kind || ' ' || g.obj || ': ' || coalesce(nullif(x.grantee, 0)::regrole::text, 'PUBLIC') || ' ' || x.privilege_type
           || case when x.is_grantable then ' with grant option' else '' end as line
      from grants g cross join lateral aclexplode(coalesce(g.acl, acldefault(g.defaults::"char", g.owner))) x
    union all
    select 'owner ' || g.kind || ' ' || g.obj || ': ' || g.owner::regrole::text from grants g
    union all
    select 'column ' || c.oid::regclass::text || '.' || a.attname || ': ' || coalesce(nullif(x.grantee, 0)::regrole::text, 'PUBLIC')
           || ' ' || x.privilege_type
      from pg_class c join pg_attribute a on a.attrelid = c.oid cross join lateral aclexplode(a.attacl) x
     where c.relnamespace = 'public'::regnamespace and not c.relispartition
    union all
    select 'row security ' || c.oid::regclass::text || ': ' || c.relrowsecurity || ' forced ' || c.relforcerowsecurity
      from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
    union all
    select 'policy ' || p.polrelid::regclass::text || ' ' || p.polname || ': ' || p.polcmd::text || ' '
           || case when p.polpermissive then 'permissive' else 'restrictive' end || ' to '
           || (select string_agg(coalesce(nullif(r, 0)::regrole::text, 'PUBLIC'), ',' order by 1) from unnest(p.polroles) r)
           || ' using ' || coalesce(pg_get_expr(p.polqual, p.polrelid), '-')
           || ' check ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '-')
      from pg_policy p
    union all
    select 'default privileges ' || d.defaclrole::regrole::text || ' ' || d.defaclobjtype::text || ': ' || d.defaclacl::text
      from pg_default_acl d
    order by 1`);
  return found.map((r) => r.line);
}
