-- Work-order totals without counting (issue 20; docs/design.md, "List totals"): every list answers
-- `meta.total`, and counting 10,000 orders for a page of 20 cost several times the page. The count of a
-- tenant's orders by status and archived state is kept as deltas, written by a statement trigger in
-- the transaction that changes the orders — so a total is exactly as visible as the rows it counts (no
-- cache, no staleness) and a list sums a few dozen rows instead of counting thousands.
create table work_order_counts (
  tenant_id uuid not null references organizations (id) on delete cascade,
  status text not null,
  archived boolean not null,
  n bigint not null
);
create index work_order_counts_key on work_order_counts (tenant_id, archived, status) include (n);

-- Read by the API as its tenant; written only by the trigger below, as the owner (the API may not write
-- counts), under the same tenant policy as the orders, which already hold writes to the tenant set.
alter table work_order_counts enable row level security;
alter table work_order_counts force row level security;
create policy tenant_isolation on work_order_counts using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());
grant select on work_order_counts to fieldops_api;

-- Folds a tenant's deltas into one row per status and archived state. Rows another transaction holds
-- (a concurrent fold) are skipped, not waited for: no deadlock, and no delta is counted twice.
create function fold_work_order_counts(tenant uuid) returns void language sql set search_path = public, pg_temp as $fn$
  with taken as (
    delete from work_order_counts
     where ctid in (select ctid from work_order_counts where tenant_id = tenant for update skip locked)
    returning status, archived, n)
  insert into work_order_counts (tenant_id, status, archived, n)
  select tenant, status, archived, sum(n) from taken group by status, archived having sum(n) <> 0
$fn$;

-- The net change of one statement: one row per (tenant, status, archived) that moved — a create adds one
-- delta, an edit that changes neither status nor archived state adds none. A statement that leaves a tenant
-- it touched with more than 64 rows folds them, so a total sums a few dozen rows (the check counts the
-- tenant's rows in the index, a few dozen at most). Deleting a tenant deletes its
-- counts by cascade; the orders' deltas are not written then (their organization is gone).
create function work_order_count_deltas() returns trigger language plpgsql security definer
  set search_path = public, pg_temp as $fn$
declare
  tenants uuid[];
begin
  if tg_op = 'INSERT' then
    insert into work_order_counts (tenant_id, status, archived, n)
    select tenant_id, status, archived_at is not null, count(*) from new_rows group by 1, 2, 3;
    select array_agg(distinct tenant_id) into tenants from new_rows;
  elsif tg_op = 'DELETE' then
    insert into work_order_counts (tenant_id, status, archived, n)
    select d.tenant_id, d.status, d.archived_at is not null, -count(*) from old_rows d
     where exists (select 1 from organizations o where o.id = d.tenant_id) group by 1, 2, 3;
    select array_agg(distinct d.tenant_id) into tenants from old_rows d
     where exists (select 1 from organizations o where o.id = d.tenant_id);
  else
    insert into work_order_counts (tenant_id, status, archived, n)
    select tenant_id, status, archived, sum(n) from (
      select tenant_id, status, archived_at is not null as archived, 1 as n from new_rows
      union all
      select tenant_id, status, archived_at is not null, -1 from old_rows
    ) moved group by 1, 2, 3 having sum(n) <> 0;
    select array_agg(distinct tenant_id) into tenants from new_rows;
  end if;
  perform fold_work_order_counts(t) from unnest(tenants) as t
   where (select count(*) from work_order_counts c where c.tenant_id = t) > 64;
  return null;
end $fn$;

-- No order is written while the counts start from what is there.
lock table work_orders in share row exclusive mode;
create trigger work_orders_count_insert after insert on work_orders
  referencing new table as new_rows for each statement execute function work_order_count_deltas();
create trigger work_orders_count_update after update on work_orders
  referencing old table as old_rows new table as new_rows for each statement execute function work_order_count_deltas();
create trigger work_orders_count_delete after delete on work_orders
  referencing old table as old_rows for each statement execute function work_order_count_deltas();
insert into work_order_counts (tenant_id, status, archived, n)
select tenant_id, status, archived_at is not null, count(*) from work_orders group by 1, 2, 3;

-- As for every function (migration 001): nobody may call one unless granted; triggers need no grant.
revoke all on function fold_work_order_counts(uuid), work_order_count_deltas() from public;
