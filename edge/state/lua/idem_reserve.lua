-- Reserve an idempotency key for one execution, atomically.
-- KEYS[1] the record (hash: st = f in flight | c completed | u outcome unknown,
--         fp = request fingerprint, tok = owner token, rec = stored response).
-- ARGV    fingerprint, owner token, lock TTL in ms.
-- Returns {"new", resumed} | {"in_flight", pttl} | {"completed", record} | {"mismatch"};
-- resumed is 1 when the key was bound to this fingerprint by an attempt of unknown outcome.
local h = redis.call('HMGET', KEYS[1], 'st', 'fp', 'rec')
local st = h[1]
if st and h[2] ~= ARGV[1] then
  return {'mismatch'}
end
if st == 'f' then
  return {'in_flight', redis.call('PTTL', KEYS[1])}
end
if st == 'c' then
  return {'completed', h[3]}
end
-- absent, or an earlier attempt whose outcome is unknown: this request runs it (again)
redis.call('HSET', KEYS[1], 'st', 'f', 'fp', ARGV[1], 'tok', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'new', st == 'u' and 1 or 0}
