-- Sessions that follow their user, and a database that protects itself (issue 19; docs/design.md,
-- "Reliability and security").

-- A user's session epoch: every session token carries the epoch it was signed in, and is accepted
-- only while the user still has it. Changing the role or the password, or disabling the user, bumps
-- it (whatever code path made the change), which ends every token signed before; deleting the user
-- ends them with the row.
alter table users add column session_epoch integer not null default 0;

create function bump_session_epoch() returns trigger language plpgsql as $fn$
begin
  if new.role is distinct from old.role or new.password_hash is distinct from old.password_hash
     or new.disabled_at is distinct from old.disabled_at then
    new.session_epoch := old.session_epoch + 1;
  end if;
  return new;
end $fn$;
create trigger users_session_epoch before update on users for each row execute function bump_session_epoch();
-- As for every function (migration 001): nobody may call one unless granted; triggers need no grant.
revoke all on function bump_session_epoch() from public;

-- Timeouts of the service roles, set for this database (`in database`): a statement that runs past its
-- role's bound is cancelled (the API answers 503 `unavailable`), and a connection left idle inside a
-- transaction is ended, so one tenant's heavy query or a stuck client cannot hold connections for long.
-- Per database rather than per role, so that two databases migrating at once never update the same
-- catalog row; an operator changes them the same way (README, "Limits and timeouts").
do $$
declare
  setting record;
begin
  for setting in
    select * from (values
      ('fieldops_api', 'statement_timeout', '5s'),
      ('fieldops_api', 'idle_in_transaction_session_timeout', '15s'),
      ('fieldops_ingest', 'statement_timeout', '30s'),
      ('fieldops_ingest', 'idle_in_transaction_session_timeout', '60s'),
      ('fieldops_worker', 'statement_timeout', '60s'),
      ('fieldops_worker', 'idle_in_transaction_session_timeout', '60s')
    ) as s (role_name, name, value)
  loop
    execute format('alter role %I in database %I set %I = %L', setting.role_name, current_database(), setting.name, setting.value);
  end loop;
end $$;
