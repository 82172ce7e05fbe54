-- Every rate limit of one request, evaluated and charged atomically: all or nothing.
-- Mirrors edge/state/algorithms.py (same integer arithmetic; see its docstring).
--
-- KEYS[i]  state of limit i (a string; GCRA "ts:debt", sliding "idx:cur:prev"), with a TTL.
-- ARGV[1]  now in microseconds, or "" to use the Redis server clock (fleet-wide time).
-- then per limit, 6 values: algorithm ("g" or "s"), limit, window units, microseconds
--          per unit, min cost, max cost (max > min only for hybrid leases).
-- Returns  {admitted, now_us, then per limit: granted, remaining, reset_us, retry_us}.
local now_us
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now_us = tonumber(ARGV[1])
end

local function fmt(x) return string.format('%.0f', x) end

local n = #KEYS
local plans = {}
local admit = true
for i = 1, n do
  local b = 1 + (i - 1) * 6
  local p = {
    gcra = ARGV[b + 1] == 'g',
    limit = tonumber(ARGV[b + 2]),
    wu = tonumber(ARGV[b + 3]),
    unit = tonumber(ARGV[b + 4]),
    minc = tonumber(ARGV[b + 5]),
    maxc = tonumber(ARGV[b + 6]),
  }
  p.now = math.floor(now_us / p.unit)
  local raw = redis.call('GET', KEYS[i])
  if p.gcra then
    local debt = 0
    if raw then
      local ts, d = string.match(raw, '^(%d+):(%d+)$')
      if ts then
        ts = tonumber(ts)
        local elapsed = p.now - ts
        if elapsed < 0 then
          elapsed = 0
          p.now = ts  -- a clock that stepped back must not erase debt later
        end
        debt = tonumber(d) - elapsed * p.limit
        if debt < 0 then debt = 0 end
      end
    end
    p.debt = debt
    p.avail = math.floor((p.limit * p.wu - debt) / p.wu)
  else
    local idx = math.floor(p.now / p.wu)
    local cur, prev = 0, 0
    if raw then
      local si, sc, sp = string.match(raw, '^(%d+):(%d+):(%d+)$')
      if si then
        si = tonumber(si)
        if si == idx then
          cur, prev = tonumber(sc), tonumber(sp)
        elseif si == idx - 1 then
          prev = tonumber(sc)
        end
      end
    end
    p.idx, p.e, p.cur, p.prev = idx, p.now - idx * p.wu, cur, prev
    p.avail = math.floor((p.limit * p.wu - prev * (p.wu - p.e) - cur * p.wu) / p.wu)
  end
  if p.avail < 0 then p.avail = 0 end
  if p.avail < p.minc then admit = false end
  plans[i] = p
end

local out = {admit and 1 or 0, now_us}
for i = 1, n do
  local p = plans[i]
  local grant = 0
  if admit then grant = math.min(p.maxc, p.avail) end
  local short = (not admit) and p.avail < p.minc
  local retry, reset = 0, 0
  if p.gcra then
    local debt = p.debt + grant * p.wu
    reset = math.ceil(debt / p.limit)
    if grant > 0 then
      redis.call('SET', KEYS[i], fmt(p.now) .. ':' .. fmt(debt), 'PX',
        fmt(math.max(1, math.ceil(reset * p.unit / 1000))))
    end
    if short then
      retry = math.ceil((p.debt + p.minc * p.wu - p.limit * p.wu) / p.limit)
    end
  else
    reset = p.wu - p.e
    if grant > 0 then
      redis.call('SET', KEYS[i], fmt(p.idx) .. ':' .. fmt(p.cur + grant) .. ':' .. fmt(p.prev), 'PX',
        fmt(math.max(1, math.ceil((2 * p.wu - p.e) * p.unit / 1000))))
    end
    if short then
      if p.cur + p.minc > p.limit then
        local need = 0
        if p.cur > 0 then
          need = p.wu - math.floor(((p.limit - p.minc) * p.wu) / p.cur)
          if need < 0 then need = 0 end
        end
        retry = (p.wu - p.e) + need
      else
        retry = p.wu - math.floor(((p.limit - p.cur - p.minc) * p.wu) / p.prev) - p.e
      end
    end
  end
  if retry < 0 then retry = 0 end
  out[#out + 1] = grant
  out[#out + 1] = p.avail - grant
  out[#out + 1] = reset * p.unit
  out[#out + 1] = retry * p.unit
end
return out
