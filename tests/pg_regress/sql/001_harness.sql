-- The harness can test RLS honestly: a table with FORCEd RLS and a policy, read as a
-- non-superuser role that does not own the table, shows only the permitted rows.
begin;
\i fixtures/setup.sql
create role harness_reader nologin;
create role harness_owner nologin;
create table harness_rows (owner name not null, note text);
alter table harness_rows owner to harness_owner;
insert into harness_rows values ('harness_reader', 'mine'), ('someone_else', 'not mine');
alter table harness_rows enable row level security;
alter table harness_rows force row level security;
grant select on harness_rows to harness_reader;
create policy only_own on harness_rows for select using (owner = current_user);
-- As superuser (bypasses RLS): both rows.
select count(*) from harness_rows;
set local role harness_reader;
select current_user, (select rolsuper from pg_roles where rolname = current_user) as is_superuser;
select * from harness_rows;
reset role;
-- The owner is held by RLS as well because it is FORCEd: owner 'harness_owner' owns no row.
set local role harness_owner;
select count(*) from harness_rows;
rollback;
