-- A request's rate limits and its Idempotency-Key reservation in one atomic call (one round trip).
-- Run after ratelimit.lua and idem_reserve.lua, each wrapped as a function of (KEYS, ARGV)
-- (redis_store.py puts the three together), so the arithmetic and the states are theirs.
--
-- The reservation is taken only when every limit admits the request: a refused request (429)
-- leaves no reservation behind. A replay, a conflict or a mismatch is charged once, as it is
-- when the two run one after the other (the charge comes first and does not look at the key).
--
-- KEYS  the rate-limit keys (as ratelimit.lua), then the idempotency record (as idem_reserve.lua).
-- ARGV  ratelimit.lua's arguments, then idem_reserve.lua's three: fingerprint, owner token, lock ms.
-- Returns {ratelimit.lua's answer, idem_reserve.lua's answer, or {} when a limit refused}.
local n, m = #KEYS - 1, #ARGV
local limit_keys, limit_args = {}, {}
for i = 1, n do limit_keys[i] = KEYS[i] end
for i = 1, m - 3 do limit_args[i] = ARGV[i] end
local limits = rate_limit(limit_keys, limit_args)
if limits[1] ~= 1 then
  return {limits, {}}
end
return {limits, reserve({KEYS[n + 1]}, {ARGV[m - 2], ARGV[m - 1], ARGV[m]})}
