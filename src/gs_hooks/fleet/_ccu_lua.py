"""The Lua scripts of the fleet's CCU sum, as text (pure: :mod:`._redis` loads them with the others).

Counts are absolute per process and slot (``CCU_REPORT``, Redis's clock judges staleness); the leader's writes
are fenced (:func:`~._lua.fenced`): a slot's sum is computed inside Redis and frozen once (``CCU_SETTLE``,
``CCU_FREEZE``), then completed or marked refused with the platform's answer (``CCU_COMPLETE``, ``CCU_REFUSE``).
"""

from __future__ import annotations

from ._lua import _NOW, Script, fenced

__all__ = ["CCU_COMPLETE", "CCU_FREEZE", "CCU_PRUNE", "CCU_REFUSE", "CCU_REPORT", "CCU_SCRIPTS", "CCU_SETTLE"]

CCU_REPORT = Script(
    "ccu_report",
    _NOW
    + """
-- KEYS: reports of the slot, member hash, frozen, open slots; ARGV: pid, slot_ms, staleness_ms, ttl_s, then
-- server, count pairs. Returns one of 'ok', 'stale', 'frozen' per server id. A slot with a new count is open.
local slot = tonumber(ARGV[2])
local stale = now_ms() - slot > tonumber(ARGV[3])
local out = {}
local wrote = false
for i = 5, #ARGV, 2 do
  if stale then
    out[#out + 1] = 'stale'
  elseif redis.call('HEXISTS', KEYS[3], ARGV[i] .. '|' .. ARGV[2]) == 1 then
    out[#out + 1] = 'frozen'
  else
    redis.call('HSET', KEYS[1], ARGV[i] .. '|' .. ARGV[1], ARGV[i + 1])
    out[#out + 1] = 'ok'
    wrote = true
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
if wrote then redis.call('ZADD', KEYS[4], 'NX', slot, ARGV[2]) end
if redis.call('EXISTS', KEYS[2]) == 1 then
  if slot > tonumber(redis.call('HGET', KEYS[2], 'ccu_through') or '0') then
    redis.call('HSET', KEYS[2], 'ccu_through', ARGV[2])
  end
end
return out
""",
)

CCU_FREEZE = fenced(
    "ccu_freeze",
    """
-- KEYS: leader, reports of the slot, frozen, pending; ARGV: lease, server, slot_ms. Returns {value, 1 if new}
local field = ARGV[2] .. '|' .. ARGV[3]
local have = redis.call('HGET', KEYS[3], field)
if have then return {tonumber(have), 0} end
local prefix = ARGV[2] .. '|'
local sum = 0
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, #prefix) == prefix then sum = sum + tonumber(all[i + 1]) end
end
redis.call('HSET', KEYS[3], field, sum)
redis.call('ZADD', KEYS[4], ARGV[3], field)
return {sum, 1}
""",
)

CCU_SETTLE = fenced(
    "ccu_settle",
    """
-- KEYS: leader, reports of the slot, frozen, pending, open slots; ARGV: lease, slot_ms, then the server ids to
-- freeze now (each to the sum of its reports, once). The slot leaves the open set once every server id reported
-- in it is frozen. Returns {1 if the slot closed, then server, value, 1 if frozen by this call, ...}
local slot = ARGV[2]
local sums = {}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local server = string.match(all[i], '^(.*)|')
  if server then sums[server] = (sums[server] or 0) + tonumber(all[i + 1]) end
end
local out = {0}
for i = 3, #ARGV do
  local field = ARGV[i] .. '|' .. slot
  local have = redis.call('HGET', KEYS[3], field)
  if have then
    out[#out + 1] = ARGV[i]; out[#out + 1] = tonumber(have); out[#out + 1] = 0
  else
    local value = sums[ARGV[i]] or 0
    redis.call('HSET', KEYS[3], field, value)
    redis.call('ZADD', KEYS[4], slot, field)
    out[#out + 1] = ARGV[i]; out[#out + 1] = value; out[#out + 1] = 1
  end
end
for server, _ in pairs(sums) do
  if redis.call('HEXISTS', KEYS[3], server .. '|' .. slot) == 0 then return out end
end
redis.call('ZREM', KEYS[5], slot)
out[1] = 1
return out
""",
)

_HISTORY = """
local function history(key, servers, field, slot, users, code)
  redis.call('ZREMRANGEBYSCORE', key, slot, slot)
  redis.call('ZADD', key, slot, slot .. ':' .. users .. ':' .. code)
  redis.call('SADD', servers, string.match(field, '^(.*)|'))
end
"""

CCU_COMPLETE = fenced(
    "ccu_complete",
    _HISTORY
    + """
-- KEYS: leader, pending, history of the server, refused, server ids; ARGV: lease, field, slot_ms, users, code
local removed = redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
history(KEYS[3], KEYS[5], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return removed
""",
)

CCU_REFUSE = fenced(
    "ccu_refuse",
    _HISTORY
    + """
-- KEYS: leader, pending, history of the server, refused, server ids; ARGV: lease, field, slot_ms, users, code, game
-- The sample stays pending, marked refused under that game key (not sent again under it), in the history.
if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 0 end
redis.call('HSET', KEYS[4], ARGV[2], ARGV[6])
history(KEYS[3], KEYS[5], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
""",
)

CCU_PRUNE = fenced(
    "ccu_prune",
    """
-- KEYS: leader, frozen, pending, then histories; ARGV: lease, before_ms. Pending slots are kept.
local before = tonumber(ARGV[2])
for i = 4, #KEYS do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[2]) end
local n = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  local slot = tonumber(string.match(f, '|(%d+)$'))
  if slot and slot < before and not redis.call('ZSCORE', KEYS[3], f) then
    redis.call('HDEL', KEYS[2], f)
    n = n + 1
  end
end
return n
""",
)

CCU_SCRIPTS = (CCU_REPORT, CCU_FREEZE, CCU_SETTLE, CCU_COMPLETE, CCU_REFUSE, CCU_PRUNE)
