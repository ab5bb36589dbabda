-- Live `since` replay reads a tenant's events after a stream id from this table when the stream has
-- been trimmed past it (services/realtime/event-replay.ts). Stream ids are `<ms>-<seq>`: indexed as
-- numbers so that "after this id, in stream order" is one index range scan.
create index events_tenant_stream_position on events
  (tenant_id, (split_part(stream_id, '-', 1)::bigint), (split_part(stream_id, '-', 2)::bigint))
  where stream_id is not null;
