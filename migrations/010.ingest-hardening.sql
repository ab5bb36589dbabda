-- Ingest hardening (docs/design.md, "Device contract" and "Backpressure and failure").

-- Refusals per device and reason, shown on the device through the API. The metrics count them by reason
-- only: a device label would publish every tenant's device ids and grow without bound.
create table device_rejections (
  device_id uuid not null references devices (id) on delete cascade,
  tenant_id uuid not null references organizations (id) on delete cascade,
  reason text not null,
  count bigint not null,
  last_at timestamptz not null,
  primary key (device_id, reason)
);
alter table device_rejections enable row level security;
alter table device_rejections force row level security;
create policy tenant_isolation on device_rejections using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());
create policy ingest_rejections on device_rejections to fieldops_ingest using (true) with check (true);
grant select on device_rejections to fieldops_api;
grant select, insert, update on device_rejections to fieldops_ingest;

-- Provisional stream gaps. Every batch's rows are committed together with a gap row covering them, marked
-- provisional (`expires_at` set); once the rows are in the stream the row is deleted. A process killed between
-- the commit and the append leaves it behind, and it is replayed like any gap: by the same node when it starts
-- again, by any node once it has expired. Gaps are replayed in the order their batches were cut (`cut_key`,
-- a per-process clock; `run_id` names the process run), not by row id: ids come in blocks and are not in
-- commit order across batches.
alter table stream_gaps
  add column run_id bigint not null default 0,
  add column cut_key bigint not null default 0,
  add column expires_at timestamptz;
create index stream_gaps_batch on stream_gaps (run_id, cut_key);
grant update (first_id, expires_at) on stream_gaps to fieldops_ingest;

-- The deduplicating batch inserts of migration 003, each writing its provisional gap in the same statement
-- (so in the same commit as the rows).
create function ingest_insert_positions_marked(marker_run bigint, marker_cut bigint, marker_ttl_s integer,
  t uuid[], d uuid[], a uuid[], ms bigint[], la float8[], lo float8[], sp real[], hd real[], ac real[], al real[], bp real[], sq bigint[])
returns table (id bigint, device_id uuid, ts_ms bigint)
language plpgsql security definer set search_path = public, pg_temp as $$
#variable_conflict use_column
begin
  return query
  with ins as (
    insert into positions as p (tenant_id, device_id, asset_id, ts, lat, lon, speed_mps, heading_deg, accuracy_m, altitude_m, battery_pct, seq)
    select u.t, u.d, u.a, timestamptz 'epoch' + u.ms * interval '1 millisecond', u.la, u.lo, u.sp, u.hd, u.ac, u.al, u.bp, u.sq
    from unnest(t, d, a, ms, la, lo, sp, hd, ac, al, bp, sq) as u(t, d, a, ms, la, lo, sp, hd, ac, al, bp, sq)
    on conflict (device_id, ts) do nothing
    returning p.id, p.device_id, (extract(epoch from p.ts) * 1000)::bigint as ts_ms
  ), marker as (
    insert into stream_gaps (stream, first_id, last_id, run_id, cut_key, expires_at)
    select 'positions', min(ins.id), max(ins.id), marker_run, marker_cut, now() + marker_ttl_s * interval '1 second'
    from ins having count(*) > 0
  )
  select ins.id, ins.device_id, ins.ts_ms from ins;
end $$;

create function ingest_insert_punches_marked(marker_run bigint, marker_cut bigint, marker_ttl_s integer,
  t uuid[], d uuid[], s uuid[], ms bigint[], e text[], k text[], la float8[], lo float8[], ac real[])
returns table (id bigint, device_id uuid, ts_ms bigint)
language plpgsql security definer set search_path = public, pg_temp as $$
#variable_conflict use_column
begin
  return query
  with ins as (
    insert into punches as p (tenant_id, device_id, site_id, ts, employee_ref, kind, lat, lon, accuracy_m)
    select u.t, u.d, u.s, timestamptz 'epoch' + u.ms * interval '1 millisecond', u.e, u.k, u.la, u.lo, u.ac
    from unnest(t, d, s, ms, e, k, la, lo, ac) as u(t, d, s, ms, e, k, la, lo, ac)
    on conflict (device_id, ts) do nothing
    returning p.id, p.device_id, (extract(epoch from p.ts) * 1000)::bigint as ts_ms
  ), marker as (
    insert into stream_gaps (stream, first_id, last_id, run_id, cut_key, expires_at)
    select 'punches', min(ins.id), max(ins.id), marker_run, marker_cut, now() + marker_ttl_s * interval '1 second'
    from ins having count(*) > 0
  )
  select ins.id, ins.device_id, ins.ts_ms from ins;
end $$;

revoke all on function
  ingest_insert_positions_marked(bigint, bigint, integer, uuid[], uuid[], uuid[], bigint[], float8[], float8[], real[], real[], real[], real[], real[], bigint[]),
  ingest_insert_punches_marked(bigint, bigint, integer, uuid[], uuid[], uuid[], bigint[], text[], text[], float8[], float8[], real[]) from public;
grant execute on function
  ingest_insert_positions_marked(bigint, bigint, integer, uuid[], uuid[], uuid[], bigint[], float8[], float8[], real[], real[], real[], real[], real[], bigint[]),
  ingest_insert_punches_marked(bigint, bigint, integer, uuid[], uuid[], uuid[], bigint[], text[], text[], float8[], float8[], real[]) to fieldops_ingest;
