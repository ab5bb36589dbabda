-- Business resources II (issue 17): quotes, parts inventory, inspection forms (docs/design.md,
-- "Quotes", "Inventory", "Inspections"). Every table is tenant data under forced row-level security.

-- Per-tenant running numbers (quote numbers): handed out inside the transaction that uses them, so a
-- rolled-back create leaves no gap and two creates never share a number.
create table tenant_counters (
  tenant_id uuid not null references organizations (id) on delete cascade,
  name text not null,
  value bigint not null,
  primary key (tenant_id, name)
);

-- Quotes. The row is the current revision; `items` hold the lines with the amounts the server computed
-- (services/api/quote-totals.ts: integer minor units, rounded half-up per line). The stage moves only
-- through the actions (services/api/quote-stages.ts).
create table quotes (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  number bigint not null,
  revision integer not null default 1 check (revision >= 1),
  client_id uuid references clients (id),
  title text check (length(title) <= 200),
  notes text check (length(notes) <= 20000),
  currency text not null check (currency ~ '^[A-Z]{3}$'),
  valid_until timestamptz,
  stage text not null default 'draft' check (stage in ('draft', 'sent', 'viewed', 'accepted', 'rejected', 'expired')),
  items jsonb not null check (jsonb_typeof(items) = 'array'),
  subtotal bigint not null check (subtotal >= 0),
  tax_total bigint not null check (tax_total >= 0),
  total bigint not null,
  sent_at timestamptz,
  sent_to text,
  viewed_at timestamptz,
  accepted_at timestamptz,
  rejected_at timestamptz,
  rejection_reason text check (length(rejection_reason) <= 2000),
  expired_at timestamptz,
  work_order_id uuid references work_orders (id),
  created_by uuid,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, number),
  check (total = subtotal + tax_total)
);
create index quotes_tenant_created on quotes (tenant_id, created_at, id);
create index quotes_tenant_stage on quotes (tenant_id, stage, created_at);
create index quotes_client on quotes (client_id) where client_id is not null;
-- The expiry job's scan: open quotes with a date.
create index quotes_open_expiry on quotes (valid_until) where stage in ('sent', 'viewed') and valid_until is not null;

-- Amendments: each superseded revision, kept as it was answered (lines, totals, stage, dates).
create table quote_revisions (
  tenant_id uuid not null references organizations (id) on delete cascade,
  quote_id uuid not null references quotes (id) on delete cascade,
  revision integer not null,
  snapshot jsonb not null,
  superseded_at timestamptz not null default now(),
  superseded_by uuid,
  primary key (quote_id, revision)
);

-- The client's acceptance of one revision: who signed, the signature image, from where, when.
create table quote_signatures (
  tenant_id uuid not null references organizations (id) on delete cascade,
  quote_id uuid not null references quotes (id) on delete cascade,
  revision integer not null,
  signed_by text not null check (length(signed_by) between 1 and 200),
  signature bytea not null,
  signature_type text not null check (signature_type in ('image/png', 'image/jpeg')),
  signed_ip inet,
  signed_at timestamptz not null default now(),
  recorded_by uuid,
  primary key (quote_id, revision)
);

-- Outgoing mail (services/api/mail.ts): the default transport records each message here, in the
-- transaction of the change that sends it; an SMTP sender, when one is configured, delivers and marks it.
create table mail_outbox (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  to_address text not null check (length(to_address) <= 320),
  subject text not null,
  body text not null,
  related_type text,
  related_id uuid,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
create index mail_outbox_related on mail_outbox (related_id);

-- Inventory (services/api/inventory-costing.ts). Warehouses hold stock; items are the parts catalogue.
create table warehouses (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  -- A description ("Depot North, aisle 3") or {"lat","lon"}, as given.
  location jsonb check (location is null or jsonb_typeof(location) in ('string', 'object')),
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index warehouses_tenant on warehouses (tenant_id, created_at, id);

-- Lower-cased, sorted, distinct: the form asset models are matched in (an asset's `model` against
-- an item's `fits_models`, case-insensitively).
create function fieldops_model_keys(models text[]) returns text[] language sql immutable parallel safe
  as $$ select coalesce(array_agg(distinct lower(btrim(m)) order by lower(btrim(m))), '{}') from unnest(models) m $$;

create table inventory_items (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  sku text not null check (length(sku) between 1 and 100),
  name text not null check (length(name) between 1 and 200),
  description text check (length(description) <= 5000),
  unit text check (length(unit) <= 20),
  fits_models text[] not null default '{}',
  fits_model_keys text[] generated always as (fieldops_model_keys(fits_models)) stored,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index inventory_items_sku on inventory_items (tenant_id, sku);
create index inventory_items_tenant on inventory_items (tenant_id, created_at, id);
create index inventory_items_fits on inventory_items using gin (fits_model_keys);

-- An item's stock as a whole: quantity and value (integer minor units). Movements lock this row, so an
-- item's movements are serialized; the item row itself (and its version, its ETag) moves only when
-- the catalogue entry is edited. `average_cost` is value ÷ quantity rounded half-up, kept from the
-- last movement that left stock (the price of the last units) when the quantity reaches 0.
create table inventory_balances (
  item_id uuid primary key references inventory_items (id) on delete cascade,
  tenant_id uuid not null references organizations (id) on delete cascade,
  quantity_on_hand bigint not null default 0 check (quantity_on_hand >= 0),
  stock_value bigint not null default 0 check (stock_value >= 0),
  average_cost bigint not null default 0 check (average_cost >= 0),
  updated_at timestamptz not null default now(),
  check (quantity_on_hand > 0 or stock_value = 0)
);

-- Stock per warehouse. Never below zero: the movement's update checks it, and this constraint is the backstop.
create table inventory_stock (
  item_id uuid not null references inventory_items (id) on delete cascade,
  warehouse_id uuid not null references warehouses (id),
  tenant_id uuid not null references organizations (id) on delete cascade,
  quantity bigint not null default 0 check (quantity >= 0),
  primary key (item_id, warehouse_id)
);
create index inventory_stock_warehouse on inventory_stock (warehouse_id);

-- Purchase orders: parts bought from a supplier for a warehouse, received into stock (all at once or in
-- parts) as `receive` movements at the order's prices. Lines: [{item_id, quantity, unit_cost, received_quantity}].
create table purchase_orders (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  number bigint not null,
  supplier text not null check (length(supplier) between 1 and 200),
  warehouse_id uuid not null references warehouses (id),
  status text not null default 'draft' check (status in ('draft', 'ordered', 'partially_received', 'received', 'cancelled')),
  lines jsonb not null check (jsonb_typeof(lines) = 'array'),
  total bigint not null check (total >= 0),
  notes text check (length(notes) <= 20000),
  ordered_at timestamptz,
  received_at timestamptz,
  cancelled_at timestamptz,
  created_by uuid,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, number)
);
create index purchase_orders_tenant on purchase_orders (tenant_id, created_at, id);
create index purchase_orders_warehouse on purchase_orders (warehouse_id);

-- The movement log: append-only (no update or delete grant, and a trigger refusing both, even to the owner).
create table inventory_movements (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references organizations (id) on delete cascade,
  item_id uuid not null references inventory_items (id),
  kind text not null check (kind in ('receive', 'consume', 'transfer', 'adjust')),
  warehouse_id uuid not null references warehouses (id),
  to_warehouse_id uuid references warehouses (id),
  -- Positive, except an adjustment, which is a signed correction (never 0).
  quantity bigint not null check (quantity <> 0 and (kind = 'adjust' or quantity > 0)),
  -- The cost per unit: the receipt's price, or the average the units left (or entered) stock at.
  unit_cost bigint check (unit_cost >= 0),
  -- The value that entered (+) or left (−) the item's stock with this movement; 0 for transfers.
  value bigint not null,
  work_order_id uuid references work_orders (id),
  -- The purchase order a receipt delivered.
  purchase_order_id uuid references purchase_orders (id),
  note text check (length(note) <= 2000),
  -- The item's stock after the movement.
  quantity_after bigint not null,
  stock_value_after bigint not null,
  average_cost_after bigint not null,
  created_by uuid,
  api_key_id uuid,
  created_at timestamptz not null default now(),
  check ((kind = 'transfer') = (to_warehouse_id is not null)),
  check (to_warehouse_id is distinct from warehouse_id)
);
create index inventory_movements_item on inventory_movements (tenant_id, item_id, id);
create index inventory_movements_purchase_order on inventory_movements (purchase_order_id) where purchase_order_id is not null;
create index inventory_movements_work_order on inventory_movements (work_order_id) where work_order_id is not null;
create index inventory_movements_warehouse on inventory_movements (warehouse_id);
create index inventory_movements_to_warehouse on inventory_movements (to_warehouse_id) where to_warehouse_id is not null;

create function refuse_movement_change() returns trigger language plpgsql as $fn$
begin
  raise exception 'inventory_movements is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end $fn$;
create trigger inventory_movements_append_only before update or delete on inventory_movements
  for each row execute function refuse_movement_change();
create trigger inventory_movements_no_truncate before truncate on inventory_movements
  for each statement execute function refuse_movement_change();

-- Inspections. A template is a checklist; a form is one submitted inspection, immutable, keeping the
-- template's items as they were when it was answered.
create table inspection_templates (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references organizations (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  description text check (length(description) <= 5000),
  items jsonb not null check (jsonb_typeof(items) = 'array'),
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index inspection_templates_tenant on inspection_templates (tenant_id, created_at, id);

create table inspection_forms (
  id uuid primary key,
  tenant_id uuid not null references organizations (id) on delete cascade,
  template_id uuid not null references inspection_templates (id),
  template_version integer not null,
  template_name text not null,
  items jsonb not null,
  work_order_id uuid references work_orders (id),
  asset_id uuid references assets (id),
  answers jsonb not null check (jsonb_typeof(answers) = 'object'),
  signed_by text not null check (length(signed_by) between 1 and 200),
  -- The signature image, in the file store like the photos.
  signature_key text not null,
  signature_type text not null check (signature_type in ('image/png', 'image/jpeg')),
  signature_size integer not null,
  signed_ip inet,
  submitted_by uuid,
  api_key_id uuid,
  version integer not null default 1,
  created_at timestamptz not null default now()
);
create index inspection_forms_tenant on inspection_forms (tenant_id, created_at, id);
create index inspection_forms_template on inspection_forms (template_id);
create index inspection_forms_work_order on inspection_forms (work_order_id) where work_order_id is not null;
create index inspection_forms_asset on inspection_forms (asset_id) where asset_id is not null;

create table inspection_photos (
  id uuid primary key,
  tenant_id uuid not null references organizations (id) on delete cascade,
  form_id uuid not null references inspection_forms (id) on delete cascade,
  -- The template item it answers; null for an attachment of the form as a whole.
  item_key text,
  position integer not null,
  content_type text not null check (content_type in ('image/png', 'image/jpeg')),
  size integer not null check (size > 0),
  sha256 bytea not null,
  storage_key text not null,
  created_at timestamptz not null default now()
);
create index inspection_photos_form on inspection_photos (form_id, position);

do $$
declare t text;
begin
  foreach t in array array['quotes', 'warehouses', 'inventory_items', 'inspection_templates', 'purchase_orders'] loop
    execute format('create trigger %I before update on %I for each row execute function bump_version()', t || '_version', t);
  end loop;
  foreach t in array array['tenant_counters', 'quotes', 'quote_revisions', 'quote_signatures', 'mail_outbox', 'warehouses',
      'inventory_items', 'inventory_balances', 'inventory_stock', 'inventory_movements', 'purchase_orders', 'inspection_templates',
      'inspection_forms', 'inspection_photos'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format('create policy tenant_isolation on %I using (tenant_id = app_tenant()) with check (tenant_id = app_tenant())', t);
  end loop;
end $$;

grant execute on function fieldops_model_keys(text[]) to fieldops_api;
grant select, insert, update on tenant_counters to fieldops_api;
-- Only drafts are deleted (the API checks); revisions, signatures and sent mail are written once.
grant select, insert, update, delete on quotes to fieldops_api;
grant select, insert on quote_revisions, quote_signatures, mail_outbox to fieldops_api;
grant select, insert, update, delete on warehouses, inventory_items, inspection_templates to fieldops_api;
grant select, insert, update on inventory_balances, inventory_stock to fieldops_api;
-- Purchase orders are cancelled, never deleted.
grant select, insert, update on purchase_orders to fieldops_api;
grant select, insert on inventory_movements to fieldops_api;
-- Submitted inspections are records: written once, never changed.
grant select, insert on inspection_forms, inspection_photos to fieldops_api;

-- The expiry job (worker role, every tenant): it sees open quotes past their date and may move them
-- to `expired`, nothing else. (An update's new row must pass the select policy too, hence `expired` there.)
grant select (id, tenant_id, stage, valid_until), update (stage, expired_at, updated_at) on quotes to fieldops_worker;
create policy worker_expire_read on quotes for select to fieldops_worker
  using (stage in ('sent', 'viewed', 'expired') and valid_until <= now());
create policy worker_expire on quotes for update to fieldops_worker
  using (stage in ('sent', 'viewed') and valid_until <= now()) with check (stage = 'expired');
