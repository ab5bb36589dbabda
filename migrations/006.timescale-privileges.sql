-- The services' privileges on the time series, the same on TimescaleDB and on plain PostgreSQL
-- (docs/design.md, "Data and tenancy"). Idempotent: a database that applied the first 004, which
-- granted the worker columns of punches, ends in the same state as one that never did.

-- The worker records what punch verification found, and nothing else: the verification columns of
-- the punches it names by (id, ts). A function rather than column-level grants, which TimescaleDB
-- copies to a hypertable's compressed table, where those columns do not exist.
create or replace function record_punch_verifications(ids bigint[], times timestamptz[], employees uuid[],
  verified boolean[], sites uuid[], distances real[])
returns integer
language sql security definer set search_path = public, pg_temp as $$
  with recorded as (
    update punches p
       set employee_id = u.employee_id, gps_verified = u.gps_verified, verified_site_id = u.site_id,
           distance_m = u.distance_m, verified_at = now()
      from unnest(ids, times, employees, verified, sites, distances) as u (id, ts, employee_id, gps_verified, site_id, distance_m)
     where p.id = u.id and p.ts = u.ts
    returning 1)
  select count(*)::integer from recorded
$$;

revoke all on function record_punch_verifications(bigint[], timestamptz[], uuid[], boolean[], uuid[], real[]) from public;
grant execute on function record_punch_verifications(bigint[], timestamptz[], uuid[], boolean[], uuid[], real[]) to fieldops_worker;

-- No column-level grant on a time-series table: drops any that an earlier migration made (the first
-- 004 granted the worker columns of punches). There are none on TimescaleDB, where they cannot exist.
do $$
declare
  g record;
begin
  for g in
    select c.oid::regclass as rel,
           case when x.grantee = 0 then 'public' else quote_ident(r.rolname) end as grantee,
           string_agg(distinct quote_ident(a.attname), ', ') as columns
      from time_series_tables t
      join pg_class c on c.oid = to_regclass(t.name)
      join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      cross join lateral aclexplode(a.attacl) x
      left join pg_roles r on r.oid = x.grantee
     group by 1, 2
  loop
    execute format('revoke all (%s) on %s from %s', g.columns, g.rel, g.grantee);
  end loop;
end $$;

-- Migration 001 revokes execute on every function in `public` from PUBLIC; procedures are not
-- functions to `revoke … on all functions`, and TimescaleDB keeps procedures there too (run_job,
-- convert_to_columnstore, merge_chunks…): no service calls any.
revoke all on all procedures in schema public from public;

-- TimescaleDB keeps its functions in `public`: the API role gets back exactly what its time-series
-- queries call, time_bucket on timestamptz (services/api/repositories/gps-events.ts; the plain path
-- uses date_bin, from pg_catalog).
do $$
declare
  bucket regprocedure;
begin
  select to_regprocedure(format('%I.time_bucket(interval, timestamptz)', n.nspname)) into bucket
    from pg_extension e join pg_namespace n on n.oid = e.extnamespace
   where e.extname = 'timescaledb';
  if bucket is not null then
    execute format('grant execute on function %s to fieldops_api', bucket);
  end if;
end $$;
