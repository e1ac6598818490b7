-- flags: no-writes
-- Before an upload stores bytes (quota.c).  ARGV: repository, digest
-- ("" when not known yet), bytes the request adds (0: whether the
-- project is full).  Returns "", or the message of the storage quota
-- the bytes would exceed.
return quota_storage(ARGV[1], ARGV[2], ARGV[3]) or ''
