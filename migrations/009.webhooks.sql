-- Webhooks (issue 18; docs/design.md, "Webhooks"): endpoints, the deliveries routed to them from the
-- events outbox, and every attempt. All three tables are tenant data under forced row-level security.

-- An endpoint. The secret is stored sealed (AES-256-GCM under WEBHOOK_SECRET_KEY), never in the clear:
-- the webhooks role must sign with it, so it cannot be a one-way hash. After a rotation the previous
-- secret keeps signing until `previous_secret_expires_at`.
create table webhooks (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  url text not null check (length(url) between 1 and 2000),
  description text check (length(description) <= 500),
  -- Event types, or '{*}' for every type.
  events text[] not null check (cardinality(events) between 1 and 100),
  enabled boolean not null default true,
  secret_sealed bytea not null,
  previous_secret_sealed bytea,
  previous_secret_expires_at timestamptz,
  secret_rotated_at timestamptz,
  -- First failed attempt since the last success; the endpoint is disabled once this is old enough.
  failing_since timestamptz,
  disabled_at timestamptz,
  disabled_reason text,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index webhooks_tenant_created on webhooks (tenant_id, created_at, id);
create index webhooks_tenant_enabled on webhooks (tenant_id) where enabled;
-- The version names the endpoint's own fields; `failing_since`, a live reading, does not move it.
create trigger webhooks_version before update on webhooks for each row
  when ((old.url, old.description, old.events, old.enabled, old.secret_sealed, old.previous_secret_expires_at, old.disabled_at)
        is distinct from (new.url, new.description, new.events, new.enabled, new.secret_sealed, new.previous_secret_expires_at, new.disabled_at))
  execute function bump_version();

-- One event (or a ping) for one endpoint. `ordering_key` (an asset, an employee, a business object) is
-- what keeps order per endpoint: only the oldest unfinished delivery of an endpoint and key is
-- `pending`; those behind it wait `queued`, and finishing one promotes the next. So a claim is a plain
-- scan of due pending rows, whatever the backlog behind them. A claim pushes `next_attempt_at` past the
-- attempt's deadline, which is the lease: a worker that dies mid-attempt leaves the row due again when
-- it runs out, and `attempts` fences the late answer of a worker that lost it.
create table webhook_deliveries (
  seq bigint generated always as identity primary key,
  id uuid not null unique default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  webhook_id uuid not null references webhooks (id) on delete cascade,
  event_id bigint,
  event_type text not null,
  occurred_at timestamptz not null,
  -- Only for deliveries without an events row (pings); an event's data is read from `events`.
  data jsonb,
  ordering_key text not null,
  status text not null default 'pending' check (status in ('queued', 'pending', 'delivered', 'failed')),
  -- Attempts made in all; `round_attempts` since the delivery was last (re)queued, for the retry schedule.
  attempts integer not null default 0,
  round_attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_status_code integer,
  last_error text,
  created_at timestamptz not null default now(),
  completed_at timestamptz
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_open on webhook_deliveries (webhook_id, ordering_key, seq) where status in ('queued', 'pending');
create index webhook_deliveries_webhook on webhook_deliveries (webhook_id, seq desc);

-- Every attempt: when, how long, what came back (status, the first bytes of the body) or what failed.
create table webhook_attempts (
  delivery_seq bigint not null references webhook_deliveries (seq) on delete cascade,
  attempt integer not null,
  tenant_id uuid not null references organizations (id) on delete cascade,
  started_at timestamptz not null,
  duration_ms integer not null,
  status_code integer,
  error text,
  response_excerpt text,
  primary key (delivery_seq, attempt)
);

do $$
declare t text;
begin
  foreach t in array array['webhooks', 'webhook_deliveries', 'webhook_attempts'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format('create policy tenant_isolation on %I using (tenant_id = app_tenant()) with check (tenant_id = app_tenant())', t);
  end loop;
end $$;

-- Routing: each statement that inserts events inserts, in the same transaction, one delivery per
-- matching enabled endpoint. It runs as `fieldops_webhook_router`, a role that cannot log in and may
-- only read endpoints, see which keys have unfinished deliveries, and insert deliveries, of every tenant —
-- whoever wrote the events (the API under one tenant, the geofence worker for many).
do $$
begin
  if not exists (select from pg_roles where rolname = 'fieldops_webhook_router') then
    begin
      create role fieldops_webhook_router nologin nosuperuser nobypassrls nocreatedb nocreaterole;
    exception when duplicate_object or unique_violation then null;
    end;
  end if;
end $$;
grant usage on schema public to fieldops_webhook_router;
grant select (id, tenant_id, events, enabled) on webhooks to fieldops_webhook_router;
grant select (webhook_id, ordering_key, status), insert on webhook_deliveries to fieldops_webhook_router;
create policy router_read on webhooks for select to fieldops_webhook_router using (true);
create policy router_read on webhook_deliveries for select to fieldops_webhook_router using (true);
create policy router_insert on webhook_deliveries for insert to fieldops_webhook_router with check (true);

create function route_events_to_webhooks() returns trigger
  language plpgsql security definer set search_path = pg_catalog, public as $fn$
begin
  insert into webhook_deliveries (tenant_id, webhook_id, event_id, event_type, occurred_at, ordering_key, status)
  select r.tenant_id, r.webhook_id, r.event_id, r.event_type, r.occurred_at, r.ordering_key,
         case when r.n = 1 and not exists (select from webhook_deliveries o
                                             where o.webhook_id = r.webhook_id and o.ordering_key = r.ordering_key
                                               and o.status in ('queued', 'pending'))
              then 'pending' else 'queued' end
    from (select k.*, row_number() over (partition by k.webhook_id, k.ordering_key order by k.event_id) as n
            from (select e.tenant_id, w.id as webhook_id, e.id as event_id, e.type as event_type, e.occurred_at,
                         case
                           when e.type like 'asset.%' then 'asset:' || coalesce(e.asset_id, e.device_id)::text
                           when e.type like 'employee.%' then 'employee:' || coalesce(e.employee_id::text, e.data ->> 'employee_ref', e.device_id::text)
                           else split_part(e.type, '.', 1) || ':' || coalesce(e.data ->> 'id', e.id::text)
                         end as ordering_key
                    from inserted e
                    join webhooks w on w.tenant_id = e.tenant_id and w.enabled and (e.type = any (w.events) or '*' = any (w.events))) k
         ) r
   order by r.event_id, r.webhook_id;
  return null;
end $fn$;
alter function route_events_to_webhooks() owner to fieldops_webhook_router;
revoke all on function route_events_to_webhooks() from public;
create trigger events_route_to_webhooks after insert on events
  referencing new table as inserted
  for each statement execute function route_events_to_webhooks();

-- Wakes the webhooks role once per inserting statement that added deliveries, on commit.
create function notify_webhook_deliveries() returns trigger language plpgsql as $fn$
begin
  if exists (select from inserted) then
    perform pg_notify('webhook_deliveries_inserted', '');
  end if;
  return null;
end $fn$;
revoke all on function notify_webhook_deliveries() from public;
create trigger webhook_deliveries_inserted after insert on webhook_deliveries
  referencing new table as inserted
  for each statement execute function notify_webhook_deliveries();

-- api: the endpoints of its tenant; deliveries to list, to queue a ping and to redeliver.
grant select, insert, update, delete on webhooks to fieldops_api;
grant select, insert, update on webhook_deliveries to fieldops_api;
grant select on webhook_attempts to fieldops_api;

-- worker (the webhooks role): every tenant's endpoints and deliveries; records attempts; disables an
-- endpoint that failed for too long (and tells its tenant through an event, granted in 001).
grant select, update on webhooks to fieldops_worker;
grant select, update on webhook_deliveries to fieldops_worker;
grant select, insert on webhook_attempts to fieldops_worker;
create policy worker_all on webhooks to fieldops_worker using (true) with check (true);
create policy worker_all on webhook_deliveries to fieldops_worker using (true) with check (true);
create policy worker_all on webhook_attempts to fieldops_worker using (true) with check (true);
