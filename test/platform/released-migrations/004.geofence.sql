-- Geofence evaluation, GPS-verified punches, timesheet approvals and the events relay (issue 4).

-- What verification found, kept on the punch record itself. Verification runs seconds after the
-- punch is committed, long before its chunk could be compressed. Nullable and without defaults,
-- which a hypertable with compression enabled accepts.
alter table punches add column if not exists employee_id uuid;
alter table punches add column if not exists gps_verified boolean;
alter table punches add column if not exists verified_site_id uuid;
alter table punches add column if not exists distance_m real;
alter table punches add column if not exists verified_at timestamptz;

create index if not exists punches_tenant_employee_ts on punches (tenant_id, employee_id, ts);

-- The API's view picks up the new columns (a view's `*` is expanded when it is created).
create or replace view punches_v with (security_barrier) as
  select * from punches where tenant_id = app_tenant();

-- The worker reads a punch's key and writes its verification, nothing else of the time series.
grant select (id, tenant_id, ts, employee_ref), update (employee_id, gps_verified, verified_site_id, distance_m, verified_at)
  on punches to fieldops_worker;

-- A timesheet is one employee's punches of one (UTC) day; it exists as soon as a punch does and is
-- pending until a manager decides. Only decisions are stored.
create table timesheet_approvals (
  tenant_id uuid not null references organizations (id) on delete cascade,
  employee_id uuid not null references employees (id) on delete cascade,
  work_date date not null,
  status text not null check (status in ('approved', 'rejected')),
  note text check (length(note) <= 2000),
  decided_by uuid references users (id) on delete set null,
  decided_at timestamptz not null default now(),
  primary key (tenant_id, employee_id, work_date)
);
alter table timesheet_approvals enable row level security;
alter table timesheet_approvals force row level security;
create policy tenant_isolation on timesheet_approvals
  using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());
grant select, insert, update, delete on timesheet_approvals to fieldops_api;

-- Wakes the outbox relay once per inserting statement that added rows (not per row), on commit.
create function notify_events_inserted() returns trigger language plpgsql as $fn$
begin
  if exists (select from inserted) then
    perform pg_notify('events_inserted', '');
  end if;
  return null;
end $fn$;
create trigger events_inserted after insert on events
  referencing new table as inserted
  for each statement execute function notify_events_inserted();

-- The event log's filters (GET /v1/events).
create index events_tenant_asset on events (tenant_id, asset_id, occurred_at desc) where asset_id is not null;
create index events_tenant_device on events (tenant_id, device_id, occurred_at desc) where device_id is not null;
create index events_tenant_employee on events (tenant_id, employee_id, occurred_at desc) where employee_id is not null;
create index events_tenant_geofence on events (tenant_id, geofence_id, occurred_at desc) where geofence_id is not null;

-- GET /v1/gps-events by device is served by the unique (device_id, ts) index: no second index on the
-- hot insert path.
