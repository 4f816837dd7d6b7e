/**
 * The Lua scripts of the shared rate windows (shared-windows.ts), run atomically by Redis. Every
 * script reads Redis's own TIME, so all instances share one clock whatever their hosts' clocks say
 * (Redis 7 replicates a script's effects, so TIME is allowed before writes).
 *
 * Minute, hour and day: a SLIDING window kept as counts per bucket (window / buckets ms each) in a
 * hash, with a running `total` and the oldest bucket still held (`head`). A bucket is counted until
 * its whole span has left the window: a send at time t is counted until at least t + window, so the
 * window is conservative (it can delay budget by at most one bucket, never exceed it). Buckets that
 * left are subtracted as the window moves past them: amortised O(1) per call, at most
 * buckets + 1 steps in any one call.
 *
 * The second: exact, like the local arrival gate (smtp/arrival-gate.ts) but for every instance. A
 * send may start only while (sends in flight everywhere + sends finished in the last second) <
 * limit. In-flight entries carry an expiry (score), so a crashed instance's places free by
 * themselves; finished sends are kept one window by their finish time.
 */

/** Reads TIME as epoch ms with a fraction (microseconds kept). */
const NOW = `
local _t = redis.call('TIME')
local now = tonumber(_t[1]) * 1000 + tonumber(_t[2]) / 1000
`;

/**
 * `slide(key, bucketMs, buckets, now)`: drops the buckets that left the window, returns
 * total, head, the current bucket and the oldest bucket still counted.
 */
const SLIDE = `
local function slide(key, bucketMs, buckets, now)
  local cur = math.floor(now / bucketMs)
  local first = cur - buckets
  local total = tonumber(redis.call('HGET', key, 'total') or '0')
  local head = tonumber(redis.call('HGET', key, 'head') or tostring(first))
  if head < first then
    if first - head > buckets then
      redis.call('DEL', key)
      total = 0
    else
      for b = head, first - 1 do
        local c = redis.call('HGET', key, tostring(b))
        if c then
          total = total - tonumber(c)
          redis.call('HDEL', key, tostring(b))
        end
      end
    end
    head = first
  end
  if total < 0 then total = 0 end
  return total, head, cur, first
end
`;

/**
 * TAKE. KEYS[1] the seeded marker, KEYS[2..] one hash per window. ARGV[1] n (0: read only), then
 * per window: limit, bucketMs, buckets. Returns {granted, waitMs, nowMs, total of each window...}, or
 * {-1} when the windows are not seeded (Redis restarted empty: nothing is granted until a seed).
 * granted is the least that every window has left (0..n); waitMs, when a window is full, is how
 * long until one send leaves every full window; then Redis's time (ms) of the take.
 */
export const TAKE_LUA = `${NOW}${SLIDE}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local n = tonumber(ARGV[1])
local grant = n
local wait = 0
local st = {}
for w = 1, #KEYS - 1 do
  local key = KEYS[w + 1]
  local limit = tonumber(ARGV[2 + (w - 1) * 3])
  local bucketMs = tonumber(ARGV[3 + (w - 1) * 3])
  local buckets = tonumber(ARGV[4 + (w - 1) * 3])
  local total, head, cur = slide(key, bucketMs, buckets, now)
  local left = limit - total
  if left < grant then grant = math.max(left, 0) end
  if left <= 0 then
    -- The oldest buckets leave first: find the one whose leaving brings the total under the limit.
    local need = total - limit + 1
    local freed = 0
    local b = head
    while b <= cur do
      freed = freed + tonumber(redis.call('HGET', key, tostring(b)) or '0')
      if freed >= need then break end
      b = b + 1
    end
    local at = (b + buckets + 1) * bucketMs
    if at - now > wait then wait = at - now end
  end
  st[w] = {key, total, head, cur, bucketMs * (buckets + 2)}
end
local out = {grant, math.ceil(wait), math.floor(now)}
for w = 1, #st do
  local s = st[w]
  local total = s[2]
  if grant > 0 then
    redis.call('HINCRBY', s[1], tostring(s[4]), grant)
    total = total + grant
  end
  if grant > 0 or redis.call('EXISTS', s[1]) == 1 then
    redis.call('HSET', s[1], 'total', total, 'head', s[3])
    redis.call('PEXPIRE', s[1], s[5])
  end
  out[#out + 1] = total
end
return out
`;

/**
 * SEED, once after Redis lost the windows. KEYS as TAKE. ARGV: per window count (sends recorded
 * in it, from MongoDB), bucketMs, buckets. The marker is set NX: only the first instance's seed
 * goes in. The counts go in as sent now (they leave a full window from now: a seed can delay
 * budget, never add to it). Returns 1 when this call seeded, 0 when another had.
 */
export const SEED_LUA = `${NOW}${SLIDE}
if not redis.call('SET', KEYS[1], tostring(math.floor(now)), 'NX') then return 0 end
for w = 1, #KEYS - 1 do
  local key = KEYS[w + 1]
  local count = tonumber(ARGV[1 + (w - 1) * 3])
  local bucketMs = tonumber(ARGV[2 + (w - 1) * 3])
  local buckets = tonumber(ARGV[3 + (w - 1) * 3])
  if count > 0 then
    local total, head, cur = slide(key, bucketMs, buckets, now)
    redis.call('HINCRBY', key, tostring(cur), count)
    redis.call('HSET', key, 'total', total + count, 'head', head)
    redis.call('PEXPIRE', key, bucketMs * (buckets + 2))
  end
end
return 1
`;

/**
 * START of one send against the shared second. KEYS[1] in flight (member: send id, score: expiry
 * ms), KEYS[2] finished (member: send id, score: finish ms). ARGV: limit, id, ttlMs, windowMs.
 * Returns {1, 0} when it may start (it is counted in flight), {0, waitMs} until the oldest finished
 * send leaves the window, {0, -1} when every place is in flight (wait for a finish).
 */
export const START_LUA = `${NOW}
local limit = tonumber(ARGV[1])
local ttl = tonumber(ARGV[3])
local win = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - win)
local busy = redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])
if busy < limit then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl + win)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if oldest[2] then return {0, math.max(1, math.ceil(tonumber(oldest[2]) + win - now))} end
return {0, -1}
`;

/**
 * FINISH (ARGV[3] = '1') or CANCEL ('0') of a started send. KEYS[1], KEYS[2] as START, KEYS[3] the
 * seeded marker, KEYS[4..] the windows. ARGV: id, windowMs of the second, finished, second on
 * ('1'/'0'), the send's grant time (Redis ms; 0: none), then per window bucketMs, buckets.
 * A finished send stays counted in the second for one window from now (its arrival was before
 * now); a cancelled one (it never went) frees its place at once. In the minute/hour/day windows a
 * finished send's grant is re-dated to now: the grant counted from the take, and from the finish it
 * counts a full window more, so whatever the wait between grant and arrival no sliding window of
 * ARRIVALS holds more than the limit. A grant that already left the window counts again; after a
 * Redis restart (no marker) nothing is moved (the re-seed counted what MongoDB had).
 */
export const FINISH_LUA = `${NOW}${SLIDE}
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  if ARGV[3] == '1' then
    redis.call('ZADD', KEYS[2], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 2)
  end
end
local grantedAt = tonumber(ARGV[5])
if ARGV[3] ~= '1' or grantedAt <= 0 or #KEYS < 4 or redis.call('EXISTS', KEYS[3]) == 0 then return 1 end
for w = 1, #KEYS - 3 do
  local key = KEYS[w + 3]
  local bucketMs = tonumber(ARGV[6 + (w - 1) * 2])
  local buckets = tonumber(ARGV[7 + (w - 1) * 2])
  local total, head, cur = slide(key, bucketMs, buckets, now)
  local gb = math.floor(grantedAt / bucketMs)
  if gb ~= cur then
    local held = 0
    if gb >= head then held = tonumber(redis.call('HGET', key, tostring(gb)) or '0') end
    if held > 0 then
      redis.call('HINCRBY', key, tostring(gb), -1)
    else
      total = total + 1
    end
    redis.call('HINCRBY', key, tostring(cur), 1)
    redis.call('HSET', key, 'total', total, 'head', head)
    redis.call('PEXPIRE', key, bucketMs * (buckets + 2))
  end
end
return 1
`;
