-- npd-sync schema, version 8: nothing. The number belongs to another branch (operations);
-- this file only keeps the versions without a gap until that branch lands, and goes then.
SELECT 1;
