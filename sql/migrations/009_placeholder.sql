-- npd-sync schema, version 9: nothing. The number belongs to another branch (governor);
-- this file only keeps the versions without a gap until that branch lands, and goes then.
SELECT 1;
