-- Webhooks follow-up (docs/design.md, "Webhooks"): the delivery log is purged after a retention period,
-- deliveries held by an endpoint disabled for that long expire, and the sweep for stranded queued
-- deliveries looks at recent ones only.

-- The purge job (services/jobs/webhook-log-purge.ts) runs as the worker role, which may delete finished
-- deliveries only: a restrictive policy, on top of its `worker_all` one, keeps queued and pending rows out
-- of reach. Their attempts go with them through the foreign key's cascade, so the worker gets no right to
-- delete attempts at all.
grant delete on webhook_deliveries to fieldops_worker;
create policy worker_delete_finished on webhook_deliveries as restrictive for delete to fieldops_worker
  using (status in ('delivered', 'failed'));

-- The purge walks finished deliveries oldest first.
create index webhook_deliveries_finished on webhook_deliveries (completed_at) where status in ('delivered', 'failed');

-- The stranded sweep takes queued deliveries created in a recent window, not every queued row (a dead
-- endpoint's queue may be long).
create index webhook_deliveries_queued_created on webhook_deliveries (created_at) where status = 'queued';
