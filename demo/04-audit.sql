-- The RLS audit: what is wrong with a hand-made table, and the SQL that fixes it
CREATE TABLE public.diary (id int PRIMARY KEY, user_id uuid, entry text);
CREATE POLICY everyone ON public.diary USING (true);
SELECT lint, level, object FROM health_rls.audit() WHERE object LIKE 'public.diary%';
SELECT remedy FROM health_rls.audit() WHERE object = 'public.diary' AND lint = 'owner_column_rls_disabled';
DROP POLICY everyone ON public.diary;
SELECT count(*) AS statements_run FROM health_rls.enable_owner_rls('public.diary');
ALTER TABLE public.diary ALTER COLUMN user_id SET NOT NULL;
SELECT count(*) AS findings_left FROM health_rls.audit() WHERE object LIKE 'public.diary%';
