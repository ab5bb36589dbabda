-- Ingest inserts into the time series but may not read them (docs/design.md, "Data and tenancy"). When a commit's outcome was
-- not seen (the connection died around COMMIT) its retry finds the rows already stored and RETURNING omits
-- them; these functions give back the ids of exactly the rows the caller names by (device, ts), so that they
-- still reach the stream. They reveal nothing the caller did not just send.
create function ingest_position_ids(keys_device uuid[], keys_ts_ms bigint[])
returns table (id bigint, device_id uuid, ts_ms bigint)
language sql stable security definer set search_path = public, pg_temp as $$
  select p.id, p.device_id, (extract(epoch from p.ts) * 1000)::bigint
  from unnest(keys_device, keys_ts_ms) as k(d, ms)
  join positions p on p.device_id = k.d and p.ts = timestamptz 'epoch' + k.ms * interval '1 millisecond'
$$;

create function ingest_punch_ids(keys_device uuid[], keys_ts_ms bigint[])
returns table (id bigint, device_id uuid, ts_ms bigint)
language sql stable security definer set search_path = public, pg_temp as $$
  select p.id, p.device_id, (extract(epoch from p.ts) * 1000)::bigint
  from unnest(keys_device, keys_ts_ms) as k(d, ms)
  join punches p on p.device_id = k.d and p.ts = timestamptz 'epoch' + k.ms * interval '1 millisecond'
$$;

revoke all on function ingest_position_ids(uuid[], bigint[]), ingest_punch_ids(uuid[], bigint[]) from public;
grant execute on function ingest_position_ids(uuid[], bigint[]), ingest_punch_ids(uuid[], bigint[]) to fieldops_ingest;

-- The batch insert itself. RETURNING would need SELECT on positions, which ingest must not have; run as the
-- owner, the function inserts and names the new rows (a conflict is a fix already stored: skipped, not returned).
-- plpgsql so that the statement's plan is cached per connection.
create function ingest_insert_positions(t uuid[], d uuid[], a uuid[], ms bigint[], la float8[], lo float8[],
  sp real[], hd real[], ac real[], al real[], bp real[], sq bigint[])
returns table (id bigint, device_id uuid, ts_ms bigint)
language plpgsql security definer set search_path = public, pg_temp as $$
#variable_conflict use_column
begin
  return query
  insert into positions as p (tenant_id, device_id, asset_id, ts, lat, lon, speed_mps, heading_deg, accuracy_m, altitude_m, battery_pct, seq)
  select u.t, u.d, u.a, timestamptz 'epoch' + u.ms * interval '1 millisecond', u.la, u.lo, u.sp, u.hd, u.ac, u.al, u.bp, u.sq
  from unnest(t, d, a, ms, la, lo, sp, hd, ac, al, bp, sq) as u(t, d, a, ms, la, lo, sp, hd, ac, al, bp, sq)
  on conflict (device_id, ts) do nothing
  returning p.id, p.device_id, (extract(epoch from p.ts) * 1000)::bigint;
end $$;

create function ingest_insert_punches(t uuid[], d uuid[], s uuid[], ms bigint[], e text[], k text[], la float8[], lo float8[], ac real[])
returns table (id bigint, device_id uuid, ts_ms bigint)
language plpgsql security definer set search_path = public, pg_temp as $$
#variable_conflict use_column
begin
  return query
  insert into punches as p (tenant_id, device_id, site_id, ts, employee_ref, kind, lat, lon, accuracy_m)
  select u.t, u.d, u.s, timestamptz 'epoch' + u.ms * interval '1 millisecond', u.e, u.k, u.la, u.lo, u.ac
  from unnest(t, d, s, ms, e, k, la, lo, ac) as u(t, d, s, ms, e, k, la, lo, ac)
  on conflict (device_id, ts) do nothing
  returning p.id, p.device_id, (extract(epoch from p.ts) * 1000)::bigint;
end $$;

revoke all on function ingest_insert_positions(uuid[], uuid[], uuid[], bigint[], float8[], float8[], real[], real[], real[], real[], real[], bigint[]),
  ingest_insert_punches(uuid[], uuid[], uuid[], bigint[], text[], text[], float8[], float8[], real[]) from public;
grant execute on function ingest_insert_positions(uuid[], uuid[], uuid[], bigint[], float8[], float8[], real[], real[], real[], real[], real[], bigint[]),
  ingest_insert_punches(uuid[], uuid[], uuid[], bigint[], text[], text[], float8[], float8[], real[]) to fieldops_ingest;
