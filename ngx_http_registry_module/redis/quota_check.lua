-- flags: no-writes
-- Before an upload stores bytes (quota.c).
-- KEYS: none (quota:P, project:P:blobs, project:P:storage).
-- ARGV: repository, digest ("" when not known yet), bytes the request
-- adds (0: whether the project is full).
-- Returns "", or the message of the storage quota the bytes would
-- exceed.
local repo, digest, bytes = ARGV[1], ARGV[2], ARGV[3]

return quota_storage(repo, digest, bytes) or ''
