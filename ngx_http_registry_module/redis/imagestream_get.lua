-- flags: no-writes
-- GET .../namespaces/P/imagestreams/N: the whole ImageStream (JSON),
-- assembled from its parts (is_whole), or nil.
-- KEYS: none (imagestream:R, its :tags, repo:R:tagnames).  ARGV: R.
local r = ARGV[1]
return is_whole(r) or false
