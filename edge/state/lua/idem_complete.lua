-- Store the final response of a reserved key.
-- KEYS[1] the record.  ARGV  fingerprint, owner token (unused: any final response
-- of the same request is a true answer), record bytes, retention in ms.
-- Returns 1 when stored, 0 when the key is already completed or belongs to another request.
local h = redis.call('HMGET', KEYS[1], 'st', 'fp')
if h[1] == 'c' then return 0 end
if h[1] and h[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'st', 'c', 'fp', ARGV[1], 'rec', ARGV[3])
redis.call('HDEL', KEYS[1], 'tok')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
