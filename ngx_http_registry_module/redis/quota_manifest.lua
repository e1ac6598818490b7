-- flags: no-writes
-- Before a manifest's Image is made (quota.c): the project's image-size,
-- and its number of image streams; manifest_put checks again, in the
-- step that stores it.
-- KEYS: none (quota:P, project:P:imagestreams).
-- ARGV: repository, tag ("" for a push by digest), the image's size
-- (config and distinct layers; 0 for an index).
-- Returns "", or the message of the limit the push would exceed.
local repo, tag, size = ARGV[1], ARGV[2], ARGV[3]

return quota_image(repo, tag, size) or ''
