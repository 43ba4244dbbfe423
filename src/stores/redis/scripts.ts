import { createHash } from 'node:crypto';

/** A Lua script with its SHA-1, run by EVALSHA with a fallback to EVAL. */
export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, source: string): Script {
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

// Every script touches exactly one key (KEYS[1]): on Redis Cluster a script naming keys in two
// slots fails with CROSSSLOT, and a session hash and its user index live in different slots.
// That is why the user index is written by its own call, before (add) or after (remove) the
// session write, so that the index always holds at least every live session of its user.
// Field/value lists are written in chunks: `unpack` of a very long list overflows Lua's C stack.

/** The record in ARGV (as SET documents them) written into the key, which holds nothing now. */
const WRITE_RECORD = `local fields = {'createdAt', ARGV[1], 'expiresAt', ARGV[2]}
if ARGV[4] ~= '' then
  fields[5], fields[6], fields[7], fields[8] = 'userId', ARGV[4], 'indexedUntil', ARGV[5]
end
for i = 6, #ARGV do
  fields[#fields + 1] = ARGV[i]
  if #fields == 200 then
    redis.call('HSET', key, unpack(fields))
    fields = {}
  end
end
if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
redis.call('PEXPIREAT', key, ARGV[3])`;

/**
 * A read of the key just written. A write ends the tracking of the key for the connection that
 * made it, even with NOLOOP; this read starts it again, so that a read tier whose tracking rides
 * on the store's connection (`RedisStore.trackOwnWrites`) hears of the next change by anyone
 * else. Only that store sends it: a call from a script costs Redis about a microsecond, a tenth
 * of UPDATE.
 */
const READ_BACK = `redis.call('EXISTS', key)`;

/** A write script as is, and with {@link READ_BACK} for a store whose connection a tier tracks on. */
export interface WriteScript {
  readonly plain: Script;
  readonly readBack: Script;
}

function writeScript(name: string, source: (readBack: string) => string): WriteScript {
  return { plain: script(name, source('')), readBack: script(`${name}-read-back`, source(READ_BACK)) };
}

/**
 * Replaces a session hash. ARGV: createdAt, expiresAt, expireAtMs (integer), userId ('' = none),
 * coveredUntil (how long the user index keeps this session), then data field/value pairs.
 * Returns the previous owner (or nil), so the store can take the key out of the old user's index.
 * A new session's key (a random 256-bit ID) holds nothing: one EXISTS, not a read and a delete.
 */
export const SET = writeScript(
  'set',
  (readBack) => `local key = KEYS[1]
local previous = false
if redis.call('EXISTS', key) == 1 then
  previous = redis.call('HGET', key, 'userId')
  redis.call('DEL', key)
end
${WRITE_RECORD}
${readBack}
return previous`,
);

/**
 * SET, unless the key holds a record that expires at ARGV[2] or later, or a forward left by
 * MOVE_OUT (setIfNewer). ARGV as for SET. Returns {0} without writing, or {1, previous owner}.
 */
export const SET_IF_NEWER = script(
  'set-if-newer',
  `local key = KEYS[1]
local meta = redis.call('HMGET', key, 'expiresAt', 'userId', 'movedAt')
if meta[3] then return {0} end
local current = tonumber(meta[1])
if current and current >= tonumber(ARGV[2]) then return {0} end
redis.call('DEL', key)
${WRITE_RECORD}
return {1, meta[2]}`,
);

/**
 * Changes an existing, unexpired session hash (patch and touch). ARGV: now, expiresAt,
 * expireAtMs, userMode ('keep' | 'set' | 'clear' | 'cover'), userId, coveredUntil, setCount,
 * then setCount field/value pairs, then the fields to delete.
 * Returns {0} when the hash is missing or expired (nothing written: a destroyed session is never
 * recreated), {3} when it is a forward left by MOVE_OUT, {2, user} when the user index must
 * first be extended to cover the new expiry (nothing written), or {1, previousUser} once applied.
 * The expiry moves in touch steps: a write that leaves it where it is writes neither the
 * expiresAt field nor the TTL, which the write that moved it set (one call less for Redis).
 */
export const UPDATE = writeScript(
  'update',
  (readBack) => `local key = KEYS[1]
local meta = redis.call('HMGET', key, 'expiresAt', 'userId', 'indexedUntil', 'movedAt')
if meta[4] then return {3} end
local current = tonumber(meta[1])
-- A missing hash, or one whose TTL was removed by hand after it expired.
if not current or current <= tonumber(ARGV[1]) then return {0} end
local mode, previous = ARGV[4], meta[2]
local user, covered = previous, meta[3] or '0'
if mode == 'set' then
  user, covered = ARGV[5], ARGV[6]
elseif mode == 'clear' then
  user = false
elseif mode == 'cover' and previous == ARGV[5] and tonumber(ARGV[6]) > (tonumber(covered) or 0) then
  covered = ARGV[6]
end
if user and tonumber(ARGV[2]) > (tonumber(covered) or 0) then return {2, user} end
local setEnd = 7 + 2 * tonumber(ARGV[7])
-- The metadata and the changed fields in one HSET, the removed ones in one HDEL (in chunks:
-- unpack of a very long list overflows Lua's C stack).
local sets = {}
local extended = meta[1] ~= ARGV[2]
if extended then sets[1], sets[2] = 'expiresAt', ARGV[2] end
if user and (user ~= previous or covered ~= meta[3]) then
  local n = #sets
  sets[n + 1], sets[n + 2], sets[n + 3], sets[n + 4] = 'userId', user, 'indexedUntil', covered
end
for i = 8, setEnd do
  sets[#sets + 1] = ARGV[i]
  if #sets >= 200 then
    redis.call('HSET', key, unpack(sets))
    sets = {}
  end
end
if #sets > 0 then redis.call('HSET', key, unpack(sets)) end
local dels = {}
if previous and not user then dels[1], dels[2] = 'userId', 'indexedUntil' end
for i = setEnd + 1, #ARGV do
  dels[#dels + 1] = ARGV[i]
  if #dels >= 200 then
    redis.call('HDEL', key, unpack(dels))
    dels = {}
  end
end
if #dels > 0 then redis.call('HDEL', key, unpack(dels)) end
if extended then redis.call('PEXPIREAT', key, ARGV[3]) end
${readBack}
return {1, previous}`,
);

/**
 * The first half of a regenerate: returns a live session hash (HGETALL order) and leaves in its
 * place a forward (a hash holding only `movedAt`) that expires at ARGV[2]; from here on UPDATE
 * refuses the old key. ARGV: now, forwardUntil (integer ms). Returns nil when the hash is
 * missing, expired or already a forward. The new key is written by SET afterwards: it lives in
 * another slot, and nobody else knows it yet.
 */
export const MOVE_OUT = script(
  'move',
  `local key = KEYS[1]
local meta = redis.call('HMGET', key, 'expiresAt', 'movedAt')
local current = tonumber(meta[1])
if meta[2] or not current or current <= tonumber(ARGV[1]) then return false end
local all = redis.call('HGETALL', key)
redis.call('DEL', key)
redis.call('HSET', key, 'movedAt', ARGV[1])
redis.call('PEXPIREAT', key, ARGV[2])
return all`,
);

/**
 * Deletes a session hash that a read found expired although its key outlived it (its TTL was
 * removed by hand, or never set), but only while it is still expired: a concurrent rewrite has
 * moved `expiresAt` forward and is kept. A forward (no `expiresAt`) is kept too. ARGV[1]: now.
 */
export const DROP_EXPIRED = script(
  'drop-expired',
  `local current = tonumber(redis.call('HGET', KEYS[1], 'expiresAt'))
if current and current <= tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0`,
);

/**
 * Deletes a session hash. ARGV[1]: delete only if this user owns it ('' = whoever owns it).
 * Returns {deleted (0 or 1), owner or nil}.
 */
export const DESTROY = script(
  'destroy',
  `local user = redis.call('HGET', KEYS[1], 'userId')
if ARGV[1] ~= '' and user ~= ARGV[1] then return {0, user} end
return {redis.call('DEL', KEYS[1]), user}`,
);

/**
 * Adds a session to a user index (a sorted set scored by the time until which the index keeps
 * that session) and expires the index with its last member. ARGV: now, member, coveredUntil.
 * Members whose score has passed are dropped: their sessions have expired.
 */
export const INDEX = script(
  'index',
  `local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
local score = redis.call('ZSCORE', key, ARGV[2])
if not score or tonumber(score) < tonumber(ARGV[3]) then
  redis.call('ZADD', key, ARGV[3], ARGV[2])
end
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', key, last[2])
return 1`,
);
