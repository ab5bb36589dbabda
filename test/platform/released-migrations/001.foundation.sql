-- Foundation: tenants, identities, devices, business tables with forced row-level security,
-- time-series tables (TimescaleDB hypertables when the extension exists, native partitions when not),
-- the events outbox, and the services' least-privilege roles (docs/design.md, "Data and tenancy").

-- Service login roles. Cluster-wide, so created only when missing (two databases may migrate at once).
do $$
declare r text;
begin
  foreach r in array array['fieldops_api', 'fieldops_ingest', 'fieldops_worker'] loop
    if not exists (select from pg_roles where rolname = r) then
      begin
        execute format('create role %I login nosuperuser nobypassrls nocreatedb nocreaterole', r);
      exception when duplicate_object or unique_violation then null;
      end;
    end if;
  end loop;
end $$;

-- The tenant of the current transaction; null (sees nothing) when unset.
create function app_tenant() returns uuid
  language sql stable parallel safe
  as $$ select nullif(current_setting('app.tenant_id', true), '')::uuid $$;

create table organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(name) between 1 and 200),
  plan text not null check (plan in ('starter', 'team', 'unlimited')),
  addons text[] not null default '{}',
  token_ttl_s integer not null default 3600 check (token_ttl_s between 60 and 604800),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- Built-in roles and their scopes; not tenant data.
create table roles (
  name text primary key,
  scopes text[] not null,
  description text not null
);

insert into roles (name, scopes, description) values
  ('admin', array[
    'users.read', 'users.write', 'api_keys.read', 'api_keys.write', 'devices.read', 'devices.write',
    'assets.read', 'assets.write', 'employees.read', 'employees.write', 'geofences.read', 'geofences.write',
    'work_orders.read', 'work_orders.write', 'quotes.read', 'quotes.write', 'inventory.read', 'inventory.write',
    'inspections.read', 'inspections.write', 'gps_events.read', 'timesheets.read', 'timesheets.write',
    'events.read', 'webhooks.read', 'webhooks.write', 'live.read'],
    'Everything in the organization, including users, keys and billing-gated features'),
  ('dispatcher', array[
    'devices.read', 'devices.write', 'assets.read', 'assets.write', 'employees.read', 'geofences.read',
    'geofences.write', 'work_orders.read', 'work_orders.write', 'quotes.read', 'quotes.write',
    'inventory.read', 'inspections.read', 'gps_events.read', 'timesheets.read', 'timesheets.write',
    'events.read', 'live.read'],
    'Runs the day: work orders, fleet, fences and the live map'),
  ('technician', array[
    'assets.read', 'work_orders.read', 'work_orders.write', 'inventory.read', 'inspections.read',
    'inspections.write', 'timesheets.read'],
    'Does the work: own work orders, inspections and parts'),
  ('viewer', array[
    'devices.read', 'assets.read', 'employees.read', 'geofences.read', 'work_orders.read', 'quotes.read',
    'inventory.read', 'inspections.read', 'gps_events.read', 'timesheets.read', 'events.read', 'live.read'],
    'Reads everything operational, changes nothing');

create table users (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  email text not null check (position('@' in email) > 1),
  name text,
  role text not null references roles (name),
  password_hash text not null,
  disabled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index users_tenant_email on users (tenant_id, lower(email));

create table api_keys (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  user_id uuid not null references users (id) on delete cascade,
  name text not null,
  -- The first characters of the key, shown in lists so that a person can tell keys apart.
  prefix text not null,
  key_hash bytea not null unique,
  scopes text[] not null,
  last_used_at timestamptz,
  revoked_at timestamptz,
  created_at timestamptz not null default now()
);
create index api_keys_tenant on api_keys (tenant_id, created_at desc);

create table geofences (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  name text not null,
  kind text not null check (kind in ('site', 'restricted', 'zone')),
  geometry jsonb not null,
  radius_m double precision check (radius_m > 0),
  width_m double precision check (width_m > 0),
  -- Consecutive fixes on the new side that confirm a transition (docs/design.md, "Geofence evaluation": 3 by default).
  confirm_fixes integer not null default 3 check (confirm_fixes between 1 and 20),
  schedule jsonb,
  asset_filter jsonb,
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index geofences_tenant on geofences (tenant_id, created_at desc);

create table assets (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  name text not null,
  make text,
  model text,
  serial text,
  client_id text,
  status text not null default 'active',
  metadata jsonb not null default '{}',
  archived_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index assets_tenant on assets (tenant_id, created_at desc);

create table devices (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  name text not null,
  kind text not null check (kind in ('tracker', 'attendance')),
  -- SHA-256 of the device token: a token alone finds its device (docs/design.md, "Device contract").
  token_hash bytea not null unique,
  asset_id uuid references assets (id) on delete set null,
  site_id uuid references geofences (id) on delete set null,
  disabled_at timestamptz,
  token_rotated_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
-- The default device list (sorted by created_at, id as tie-breaker) reads its page from this index in order.
create index devices_tenant on devices (tenant_id, created_at, id);
create unique index devices_asset on devices (asset_id) where asset_id is not null and disabled_at is null;

create table employees (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  name text not null,
  email text,
  phone text,
  role text,
  badge_code text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index employees_badge on employees (tenant_id, badge_code) where badge_code is not null;
create index employees_tenant on employees (tenant_id, created_at desc);

-- The last fix and contact of each device, kept by ingest (at most once a second per device).
create table device_state (
  device_id uuid primary key references devices (id) on delete cascade,
  tenant_id uuid not null references organizations (id) on delete cascade,
  last_seen_at timestamptz not null,
  last_fix_ts timestamptz,
  lat double precision,
  lon double precision,
  speed_mps real,
  heading_deg real,
  accuracy_m real,
  battery_pct real
);

-- Events: the outbox of every event (geofence, punch, business). A relay moves rows to the Redis
-- stream events:{tenant} in id order and records the stream id it got (docs/design.md, "Events outbox").
create table events (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references organizations (id) on delete cascade,
  type text not null,
  occurred_at timestamptz not null,
  recorded_at timestamptz not null default now(),
  data jsonb not null,
  -- Makes a retried write of the same fact a no-op (a transition, a punch, an API change).
  idempotency_key text not null,
  asset_id uuid,
  device_id uuid,
  employee_id uuid,
  geofence_id uuid,
  stream_id text,
  published_at timestamptz
);
create unique index events_idempotency on events (tenant_id, idempotency_key);
create index events_unpublished on events (id) where published_at is null;
create index events_tenant_time on events (tenant_id, occurred_at desc, id desc);
create index events_tenant_type on events (tenant_id, type, occurred_at desc);
create index events_tenant_stream on events (tenant_id, id) where stream_id is not null;

-- Row-level security on every tenant table, forced so that even the owner obeys it.
do $$
declare t text;
begin
  foreach t in array array['users', 'api_keys', 'geofences', 'assets', 'devices', 'employees', 'device_state', 'events'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format('create policy tenant_isolation on %I using (tenant_id = app_tenant()) with check (tenant_id = app_tenant())', t);
  end loop;
  alter table organizations enable row level security;
  alter table organizations force row level security;
  create policy tenant_isolation on organizations using (id = app_tenant()) with check (id = app_tenant());
end $$;

-- Time series. Same columns and queries on both paths; only the storage differs.
create function fieldops_create_time_series(name text, columns text, unique_cols text, retention interval, compress_after interval, segment_by text)
returns void language plpgsql as $fn$
begin
  if exists (select from pg_extension where extname = 'timescaledb') then
    execute format('create table %I (%s, unique (%s))', name, columns, unique_cols);
    perform create_hypertable(name::regclass, 'ts', chunk_time_interval => interval '1 day');
    execute format('alter table %I set (timescaledb.compress, timescaledb.compress_segmentby = %L, timescaledb.compress_orderby = %L)',
      name, segment_by, 'ts desc');
    perform add_compression_policy(name::regclass, compress_after);
    perform add_retention_policy(name::regclass, retention);
  else
    execute format('create table %I (%s, unique (%s)) partition by range (ts)', name, columns, unique_cols);
    -- Rows outside the daily partitions (very old or far ahead) land here rather than failing.
    execute format('create table %I partition of %I default', name || '_default', name);
  end if;
  insert into time_series_tables (name, retention) values (name, retention);
end $fn$;

do $$
begin
  if exists (select from pg_available_extensions where name = 'timescaledb') then
    create extension if not exists timescaledb;
  end if;
end $$;

create table time_series_tables (name text primary key, retention interval not null);

-- Position ids are handed out in blocks of 1,000 (one nextval per block), so that ingest can name the
-- rows it COPYs in without RETURNING, which would need SELECT on the table.
select fieldops_create_time_series('positions', $cols$
  id bigint generated by default as identity (increment by 1000),
  tenant_id uuid not null,
  device_id uuid not null,
  asset_id uuid,
  ts timestamptz not null,
  received_at timestamptz not null default now(),
  lat double precision not null,
  lon double precision not null,
  speed_mps real,
  heading_deg real,
  accuracy_m real,
  altitude_m real,
  battery_pct real,
  seq bigint
$cols$, 'device_id, ts', interval '90 days', interval '7 days', 'tenant_id, device_id');

select fieldops_create_time_series('punches', $cols$
  id bigint generated always as identity,
  tenant_id uuid not null,
  device_id uuid not null,
  site_id uuid,
  ts timestamptz not null,
  received_at timestamptz not null default now(),
  employee_ref text not null,
  kind text not null check (kind in ('in', 'out')),
  lat double precision,
  lon double precision,
  accuracy_m real
$cols$, 'device_id, ts', interval '400 days', interval '30 days', 'tenant_id, device_id');

create index positions_tenant_asset_ts on positions (tenant_id, asset_id, ts desc);
create index positions_tenant_ts on positions (tenant_id, ts desc);
-- Ids grow with insertion, so a BRIN index finds an id range (stream gap replay) for a fraction of a
-- b-tree's cost on every insert.
create index positions_id on positions using brin (id);
create index punches_tenant_ts on punches (tenant_id, ts desc);
create index punches_id on punches using brin (id);

drop function fieldops_create_time_series(text, text, text, interval, interval, text);

-- Daily partitions on the plain-PostgreSQL path: created ahead, dropped past retention.
-- TimescaleDB does both itself, so there the function does nothing.
create function maintain_time_partitions(days_ahead integer default 3, days_behind integer default 7)
returns integer language plpgsql security definer set search_path = public, pg_temp as $fn$
declare
  t record;
  d date;
  part text;
  made integer := 0;
begin
  if exists (select from pg_extension where extname = 'timescaledb') then
    return 0;
  end if;
  for t in select name, retention from time_series_tables loop
    for d in select generate_series(current_date - days_behind, current_date + days_ahead, interval '1 day')::date loop
      part := format('%s_p%s', t.name, to_char(d, 'YYYYMMDD'));
      if to_regclass(part) is null then
        begin
          execute format('create table %I partition of %I for values from (%L) to (%L)', part, t.name, d, d + 1);
          made := made + 1;
        exception when duplicate_table then null;
          -- Rows for that day already sit in the default partition: they stay there.
          when check_violation then null;
        end;
      end if;
    end loop;
    for part in
      select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = t.name::regclass and c.relname ~ ('^' || t.name || '_p[0-9]{8}$')
        and to_date(right(c.relname, 8), 'YYYYMMDD') < (current_date - t.retention)::date
    loop
      execute format('drop table %I', part);
    end loop;
  end loop;
  return made;
end $fn$;

select maintain_time_partitions();

-- Stream catch-up: a committed batch whose XADD failed (Redis down) is recorded here and replayed
-- from the table when Redis is back, so that no committed fix is missing from the stream.
create table stream_gaps (
  id bigint generated always as identity primary key,
  stream text not null check (stream in ('positions', 'punches')),
  first_id bigint not null,
  last_id bigint not null,
  recorded_at timestamptz not null default now()
);

create function stream_gap_positions(first_id bigint, last_id bigint)
returns setof positions language sql stable security definer set search_path = public, pg_temp as $$
  select * from positions where id between first_id and last_id order by id
$$;

create function stream_gap_punches(first_id bigint, last_id bigint)
returns setof punches language sql stable security definer set search_path = public, pg_temp as $$
  select * from punches where id between first_id and last_id order by id
$$;

-- The API reads time series only through views that filter on the tenant setting.
create view positions_v with (security_barrier) as
  select * from positions where tenant_id = app_tenant();
create view punches_v with (security_barrier) as
  select * from punches where tenant_id = app_tenant();

-- Change notices, sent on commit (so never for a rolled-back change): ingest drops cached device
-- credentials, geofence evaluators reload a tenant's fences, whatever code path made the change.
create function notify_device_changed() returns trigger language plpgsql as $fn$
begin
  perform pg_notify('device_changed', coalesce(new.id, old.id)::text);
  return null;
end $fn$;
create trigger devices_changed after update or delete on devices
  for each row execute function notify_device_changed();

create function notify_geofence_changed() returns trigger language plpgsql as $fn$
begin
  perform pg_notify('geofence_changed', json_build_object(
    'tenant_id', coalesce(new.tenant_id, old.tenant_id), 'id', coalesce(new.id, old.id), 'op', lower(tg_op))::text);
  return null;
end $fn$;
create trigger geofences_changed after insert or update or delete on geofences
  for each row execute function notify_geofence_changed();

-- Privileges. Default: nothing. Each role gets what its job needs.
revoke all on all tables in schema public from public;
revoke all on all functions in schema public from public;
grant usage on schema public to fieldops_api, fieldops_ingest, fieldops_worker;
grant execute on function app_tenant() to fieldops_api, fieldops_ingest, fieldops_worker;

-- api: business tables under RLS, time series only through the views.
grant select on roles to fieldops_api, fieldops_worker;
grant select, insert, update, delete on organizations, users, api_keys, geofences, assets, devices, employees
  to fieldops_api;
grant select on device_state to fieldops_api;
grant select, insert on events to fieldops_api;
grant select on positions_v, punches_v to fieldops_api;

-- ingest: device credentials (no other column of devices), inserts into the time series, its gaps.
grant select (id, tenant_id, kind, token_hash, asset_id, site_id, disabled_at, token_rotated_at) on devices to fieldops_ingest;
create policy ingest_credentials on devices for select to fieldops_ingest using (true);
grant insert on positions, punches to fieldops_ingest;
grant usage on sequence positions_id_seq to fieldops_ingest;
grant select, insert, update on device_state to fieldops_ingest;
create policy ingest_device_state on device_state to fieldops_ingest using (true) with check (true);
grant select, insert, delete on stream_gaps to fieldops_ingest;
grant execute on function stream_gap_positions(bigint, bigint), stream_gap_punches(bigint, bigint) to fieldops_ingest;

-- worker (geofence evaluator, outbox relay): reads what evaluation needs across tenants, writes events.
grant select on organizations, geofences, assets, employees to fieldops_worker;
grant select (id, tenant_id, kind, asset_id, site_id, disabled_at) on devices to fieldops_worker;
create policy worker_read on organizations for select to fieldops_worker using (true);
create policy worker_read on geofences for select to fieldops_worker using (true);
create policy worker_read on assets for select to fieldops_worker using (true);
create policy worker_read on employees for select to fieldops_worker using (true);
create policy worker_read on devices for select to fieldops_worker using (true);
grant select, insert, update on events to fieldops_worker;
create policy worker_events on events to fieldops_worker using (true) with check (true);
grant execute on function maintain_time_partitions(integer, integer) to fieldops_worker;
