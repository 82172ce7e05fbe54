-- Drop our in-flight marker (only ours: a lock that expired and was taken by
-- another request is left alone, or that request could run twice).
-- KEYS[1] the record.  ARGV  fingerprint, owner token, keep ms ("" = delete the key;
-- otherwise keep the key bound to the fingerprint, state u, for that long).
-- Returns 1 when released, 0 when the marker was not ours.
local h = redis.call('HMGET', KEYS[1], 'st', 'fp', 'tok')
if h[1] ~= 'f' or h[2] ~= ARGV[1] or h[3] ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'st', 'u')
  redis.call('HDEL', KEYS[1], 'tok')
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
