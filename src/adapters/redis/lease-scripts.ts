/**
 * The Lua scripts of the partition leases (partition-leases.ts), each one atomic in Redis and one
 * round trip, however many partitions it covers. Keys, under the connection's prefix:
 *   `members`          ZSET member id -> its last heartbeat (Redis server ms)
 *   `part:<p>`         the lease of partition p: the owner's id, PX the lease TTL
 *   `part-since`       HASH p -> when the current owner took it (server ms; status only)
 * Times come from Redis's own clock (TIME), so members with skewed clocks still agree on who is
 * live. Keys are built inside the scripts from the prefix (a standalone Redis, not Redis Cluster).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Server time in ms; scripts that write after TIME need effects replication (the default since Redis 5). */
const NOW = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * One round's heartbeat and renewals, then the table. ARGV: prefix, self, ttl, P, held partitions.
 * A held lease still ours is PEXPIREd; one that is gone (expired, or Redis restarted empty) is taken
 * back with SET (no one holds it: NX in effect, the script is atomic); one held by another is left
 * (the caller reports it lost). Returns {now, wasRegistered, live members with their heartbeats
 * (flat), owner of each partition ('' = free), PTTL of the soonest lease held by a member not live
 * (-1: none)}.
 */
export const ROUND = `${NOW}
local prefix, self, ttl, P = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local members = prefix .. 'members'
local registered = 0
if redis.call('ZSCORE', members, self) then registered = 1 end
redis.call('ZADD', members, now, self)
-- Forget members silent for long (their leases expired long ago); status still shows recent ones.
redis.call('ZREMRANGEBYSCORE', members, '-inf', now - 10 * ttl)
for i = 5, #ARGV do
  local key = prefix .. 'part:' .. ARGV[i]
  local owner = redis.call('GET', key)
  if owner == self then
    redis.call('PEXPIRE', key, ttl)
  elseif not owner then
    redis.call('SET', key, self, 'PX', ttl)
    redis.call('HSET', prefix .. 'part-since', ARGV[i], now)
  end
end
local live = redis.call('ZRANGEBYSCORE', members, '(' .. (now - ttl), '+inf', 'WITHSCORES')
local isLive = {}
for i = 1, #live, 2 do isLive[live[i]] = true end
local owners = {}
-- A lease outliving its owner's heartbeat by a moment (both are written by one script, but the
-- heartbeat's ms is rounded down): when it expires, so the caller's next round can take it.
local orphanPttl = -1
for p = 0, P - 1 do
  local key = prefix .. 'part:' .. p
  local owner = redis.call('GET', key)
  owners[p + 1] = owner or ''
  if owner and not isLive[owner] then
    local pttl = redis.call('PTTL', key)
    if pttl >= 0 and (orphanPttl < 0 or pttl < orphanPttl) then orphanPttl = pttl end
  end
end
return {now, registered, live, owners, orphanPttl}
`;

/** Takes free partitions: SET NX PX each. ARGV: prefix, self, ttl, partitions. Returns those taken. */
export const TAKE = `${NOW}
local prefix, self, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local taken = {}
for i = 4, #ARGV do
  if redis.call('SET', prefix .. 'part:' .. ARGV[i], self, 'NX', 'PX', ttl) then
    redis.call('HSET', prefix .. 'part-since', ARGV[i], now)
    taken[#taken + 1] = ARGV[i]
  end
end
return taken
`;

/**
 * Gives partitions back: DEL each lease only while it is still ours (compare-and-DEL). ARGV:
 * prefix, self, leave ('1': also remove the heartbeat), partitions. Returns how many were deleted.
 */
export const RELEASE = `
local prefix, self = ARGV[1], ARGV[2]
local released = 0
for i = 4, #ARGV do
  local key = prefix .. 'part:' .. ARGV[i]
  if redis.call('GET', key) == self then
    redis.call('DEL', key)
    redis.call('HDEL', prefix .. 'part-since', ARGV[i])
    released = released + 1
  end
end
if ARGV[3] == '1' then redis.call('ZREM', prefix .. 'members', self) end
return released
`;

/**
 * Reads the table, writes nothing (a `cluster status` on a member that never started). ARGV:
 * prefix, P. Returns {now, members with scores (flat), per held partition: p, owner, pttl, since}.
 */
export const STATUS = `
local prefix, P = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local members = redis.call('ZRANGE', prefix .. 'members', 0, -1, 'WITHSCORES')
local leases = {}
for p = 0, P - 1 do
  local key = prefix .. 'part:' .. p
  local owner = redis.call('GET', key)
  if owner then
    local since = redis.call('HGET', prefix .. 'part-since', p) or ''
    leases[#leases + 1] = {p, owner, redis.call('PTTL', key), since}
  end
end
return {now, members, leases}
`;

const shas = new Map<string, string>();

/**
 * Runs a script by its SHA (EVALSHA), loading it with EVAL when Redis does not know it (first use,
 * or a Redis restarted empty).
 */
export async function runScript(client: Redis, lua: string, args: ReadonlyArray<string | number>): Promise<unknown> {
  let sha = shas.get(lua);
  if (sha === undefined) {
    sha = createHash('sha1').update(lua).digest('hex');
    shas.set(lua, sha);
  }
  try {
    return await client.evalsha(sha, 0, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return client.eval(lua, 0, ...args);
  }
}
