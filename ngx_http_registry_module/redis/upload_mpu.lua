-- The session's S3 multipart upload, recorded before its first part is
-- sent, so that a retry after a lost answer goes on with the same
-- multipart upload instead of leaving it behind.
-- KEYS: upload:ID.
-- ARGV: token, multipart id.
-- Returns 1 when recorded, 0 when the claim is not ours any more.
local session = KEYS[1]
local token, mpu = ARGV[1], ARGV[2]

if not upload_ours(session, token) then return 0 end
redis.call('HSET', session, 'mpu', mpu)
upload_keep_mpu(session, mpu)
return 1
