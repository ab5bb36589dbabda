-- Business resources I (issue 16). First the REST conventions every resource shares (docs/design.md,
-- "REST conventions"): versions behind ETag / If-Match, idempotency keys, version history. Then the
-- resources: clients, sites, employees, assets, work orders.

-- Optimistic concurrency. Every updatable resource carries a version that the database bumps on every
-- update, whatever code path made it; the API answers it as the ETag and compares If-Match against it.
create function bump_version() returns trigger language plpgsql as $fn$
begin
  new.version := old.version + 1;
  return new;
end $fn$;

do $$
declare t text;
begin
  foreach t in array array['users', 'devices', 'geofences', 'assets', 'employees'] loop
    execute format('alter table %I add column version integer not null default 1', t);
    execute format('create trigger %I before update on %I for each row execute function bump_version()', t || '_version', t);
  end loop;
end $$;

-- Idempotency keys. A POST with `Idempotency-Key` claims (tenant, user, key) in the same transaction as
-- its change and stores its answer there: a retry answers the stored result, and a retry racing the
-- first waits on this primary key until the first commits (or rolls back, freeing the key).
-- How long a key is remembered, in one place: the API's claim, the purge job and its policy.
create function idempotency_ttl() returns interval language sql immutable parallel safe
  as $$ select interval '24 hours' $$;

create table idempotency_keys (
  tenant_id uuid not null references organizations (id) on delete cascade,
  -- The caller: a user, or the user an API key acts for. No foreign key: keys expire on their own.
  user_id uuid not null,
  key text not null check (length(key) between 1 and 255),
  -- SHA-256 of method, path and body: the same key with another request is refused.
  fingerprint bytea not null,
  method text not null,
  path text not null,
  -- The first answer, set before the claiming transaction commits (so never seen unset by another).
  status integer,
  -- Its serialized JSON; AES-256-GCM sealed when the answer shows a secret (a device token, an API key).
  response bytea,
  sealed boolean not null default false,
  created_at timestamptz not null default now(),
  primary key (tenant_id, user_id, key)
);
create index idempotency_keys_created on idempotency_keys (created_at);

-- Version history: one row per change of a versioned object (who, when, what changed, the object after
-- it). Work orders keep their status moves here; assets are restored from these snapshots.
create table object_versions (
  tenant_id uuid not null references organizations (id) on delete cascade,
  object_type text not null,
  object_id uuid not null,
  version integer not null,
  action text not null,
  changed_at timestamptz not null default now(),
  -- The user who made the change (for an API key, the user it acts for) and the key, if one was used.
  changed_by uuid,
  api_key_id uuid,
  -- {"field": {"from": …, "to": …}} for every field that changed.
  changes jsonb not null default '{}',
  -- The object as the API answered it after the change (its own fields; live readings left out).
  snapshot jsonb not null,
  -- For a restore: the version it brought back.
  restored_from integer,
  primary key (tenant_id, object_type, object_id, version)
);

do $$
declare t text;
begin
  foreach t in array array['idempotency_keys', 'object_versions'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format('create policy tenant_isolation on %I using (tenant_id = app_tenant()) with check (tenant_id = app_tenant())', t);
  end loop;
end $$;

-- As for every function (migration 001): nobody may call one unless granted; triggers need no grant.
revoke all on function bump_version(), idempotency_ttl() from public;
grant execute on function idempotency_ttl() to fieldops_api, fieldops_worker;
grant select, insert, update on idempotency_keys to fieldops_api;
grant select, insert on object_versions to fieldops_api;
-- The purge job (worker) sees and deletes expired keys only, of every tenant.
grant select (tenant_id, created_at), delete on idempotency_keys to fieldops_worker;
create policy worker_purge_expired on idempotency_keys for all to fieldops_worker
  using (created_at < now() - idempotency_ttl());

-- Scopes of the new resources, on the built-in roles.
update roles set scopes = scopes || array['clients.read', 'clients.write', 'sites.read', 'sites.write']
  where name in ('admin', 'dispatcher');
update roles set scopes = scopes || array['clients.read', 'sites.read'] where name in ('technician', 'viewer');

-- Clients: the customers.
create table clients (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  email text check (length(email) <= 320),
  phone text check (length(phone) <= 50),
  address text check (length(address) <= 1000),
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index clients_tenant on clients (tenant_id, created_at, id);

-- Sites: where the work is. A site may own the `site` geofence its attendance punches are verified against.
create table sites (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  client_id uuid references clients (id),
  address text check (length(address) <= 1000),
  lat double precision check (lat between -90 and 90),
  lon double precision check (lon between -180 and 180),
  geofence_id uuid references geofences (id) on delete set null,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((lat is null) = (lon is null))
);
create index sites_tenant on sites (tenant_id, created_at, id);
create index sites_client on sites (client_id) where client_id is not null;
create unique index sites_geofence on sites (geofence_id) where geofence_id is not null;

-- A device's site_id names a site now, or — as before sites existed — a `site` geofence; the punch
-- verifier resolves either to the fence. It can no longer be a foreign key to one table, so deleting a
-- site or a geofence clears the devices that name it (and so tells ingest through device_changed).
alter table devices drop constraint if exists devices_site_id_fkey;
create function clear_device_site() returns trigger language plpgsql as $fn$
begin
  update devices set site_id = null, updated_at = now() where site_id = old.id;
  return null;
end $fn$;
create trigger sites_clear_devices after delete on sites for each row execute function clear_device_site();
create trigger geofences_clear_devices after delete on geofences for each row execute function clear_device_site();

-- Employees: certifications, and the earliest expiry among them (kept by a trigger) for
-- `certification_expires_before`.
alter table employees
  add column certifications jsonb not null default '[]' check (jsonb_typeof(certifications) = 'array'),
  add column certification_expires_on date;
create function employee_certification_expiry() returns trigger language plpgsql as $fn$
begin
  new.certification_expires_on := (
    select min((c ->> 'expires_on')::date) from jsonb_array_elements(new.certifications) c
     where jsonb_typeof(c) = 'object' and c ->> 'expires_on' is not null);
  return new;
end $fn$;
create trigger employees_certification_expiry before insert or update of certifications on employees
  for each row execute function employee_certification_expiry();
create index employees_certification_expiry on employees (tenant_id, certification_expires_on)
  where certification_expires_on is not null;

-- Assets: a client of this tenant, and the mechanical state (the old free `status` column, unused until now).
alter table assets alter column client_id type uuid using nullif(client_id, '')::uuid;
alter table assets add constraint assets_client_id_fkey foreign key (client_id) references clients (id);
alter table assets rename column status to state;
alter table assets alter column state set default 'operational';
update assets set state = 'operational' where state not in ('operational', 'needs_service', 'under_repair', 'out_of_service');
alter table assets add constraint assets_state check (state in ('operational', 'needs_service', 'under_repair', 'out_of_service'));
create index assets_client on assets (client_id) where client_id is not null;
create index devices_asset_any on devices (asset_id) where asset_id is not null;

-- Work orders: a state machine (services/api/work-order-states.ts), archived rather than deleted.
create table work_orders (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  title text not null check (length(title) between 1 and 200),
  description text check (length(description) <= 20000),
  notes text check (length(notes) <= 20000),
  priority text not null default 'normal' check (priority in ('low', 'normal', 'high', 'urgent')),
  status text not null check (status in ('draft', 'scheduled', 'assigned', 'en_route', 'in_progress', 'on_hold', 'completed', 'cancelled')),
  -- The status an order on hold returns to when resumed.
  held_from text check (held_from in ('scheduled', 'assigned', 'en_route', 'in_progress')),
  client_id uuid references clients (id),
  site_id uuid references sites (id),
  asset_id uuid references assets (id),
  assignee_id uuid references employees (id),
  scheduled_start timestamptz,
  scheduled_end timestamptz,
  started_at timestamptz,
  completed_at timestamptz,
  cancelled_at timestamptz,
  archived_at timestamptz,
  created_by uuid,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (scheduled_start is null or scheduled_end is null or scheduled_end >= scheduled_start)
);
-- The default list (newest first, archived left out) reads its page and counts its total from this index
-- alone; then the filters that narrow it most.
create index work_orders_tenant_created on work_orders (tenant_id, created_at, id) where archived_at is null;
create index work_orders_tenant_status on work_orders (tenant_id, status, created_at);
create index work_orders_tenant_assignee on work_orders (tenant_id, assignee_id, created_at) where assignee_id is not null;
create index work_orders_tenant_when on work_orders (tenant_id, (coalesce(scheduled_start, created_at)));
create index work_orders_client on work_orders (client_id) where client_id is not null;
create index work_orders_site on work_orders (site_id) where site_id is not null;
create index work_orders_asset on work_orders (asset_id) where asset_id is not null;

-- The sign-off taken at completion: who signed, and the signature image (PNG or JPEG, ≤ 10 MiB).
create table work_order_signoffs (
  work_order_id uuid primary key references work_orders (id) on delete cascade,
  tenant_id uuid not null references organizations (id) on delete cascade,
  signed_by text not null check (length(signed_by) between 1 and 200),
  signature bytea,
  signature_type text check (signature_type in ('image/png', 'image/jpeg')),
  signed_at timestamptz not null default now(),
  recorded_by uuid,
  check ((signature is null) = (signature_type is null))
);

do $$
declare t text;
begin
  foreach t in array array['clients', 'sites', 'work_orders'] loop
    execute format('create trigger %I before update on %I for each row execute function bump_version()', t || '_version', t);
  end loop;
  foreach t in array array['clients', 'sites', 'work_orders', 'work_order_signoffs'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format('create policy tenant_isolation on %I using (tenant_id = app_tenant()) with check (tenant_id = app_tenant())', t);
  end loop;
end $$;

revoke all on function clear_device_site(), employee_certification_expiry() from public;

grant select, insert, update, delete on clients, sites to fieldops_api;
-- Work orders are archived, never deleted; a sign-off is written once.
grant select, insert, update on work_orders to fieldops_api;
grant select, insert on work_order_signoffs to fieldops_api;
-- Punch verification resolves a device's site to its fence.
grant select (id, tenant_id, geofence_id) on sites to fieldops_worker;
create policy worker_read on sites for select to fieldops_worker using (true);
