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
  -- The object as the API answered it after the change.
  snapshot jsonb not null,
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

grant execute on function idempotency_ttl() to fieldops_api, fieldops_worker;
grant select, insert, update on idempotency_keys to fieldops_api;
grant select, insert on object_versions to fieldops_api;
-- The purge job (worker) sees and deletes expired keys only, of every tenant.
grant select (tenant_id, created_at), delete on idempotency_keys to fieldops_worker;
create policy worker_purge_expired on idempotency_keys for all to fieldops_worker
  using (created_at < now() - idempotency_ttl());
