"""The Lua scripts of fleet mode, as text (pure: :mod:`._redis` loads them and calls them by SHA).

Each script is one atomic step; times inside scripts come from Redis's own clock (``TIME``), so processes on
machines whose clocks disagree still agree on who is live. Fenced scripts start by comparing ``P:leader`` with
the caller's ``pid|token`` (``KEYS[1]``, ``ARGV[1]``) and fail with ``FENCED`` when the lease is not the
caller's: a paused old leader cannot overwrite the new one. Scripts that address a key they compute (the previous
owner's inbox) assume one Redis instance, not a cluster. The CCU sum's scripts are in :mod:`._ccu_lua`.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "BANS_PRUNE",
    "CLAIM",
    "ENSURE_EPOCH",
    "FENCED_SET",
    "HEARTBEAT",
    "LEADER_ACQUIRE",
    "LEADER_RELEASE",
    "LEADER_RENEW",
    "MEMBERS",
    "PUBLISH",
    "PUBLISH_BANS",
    "RELEASE",
    "STREAM_TAIL",
    "Script",
    "fenced",
]


class Script:
    """A Lua script: its text and SHA1 (the EVALSHA name).

    Attributes:
        name: for logs and errors.
        text: the Lua source.
        sha: hex SHA1 of the text.
    """

    __slots__ = ("name", "sha", "text")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    def __repr__(self) -> str:
        return f"Script({self.name!r})"


_NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# XADD with the stream's next sequence number; ttl_ms > 0 also sets the stream's expiry (inboxes).
_XADD_SEQ = """
local function xadd_seq(stream, maxlen, ttl_ms, op, origin, event, body)
  local seq = redis.call('INCR', stream .. ':seq')
  local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
    'o', op, 'p', origin, 'e', event, 's', seq, 'b', body)
  if tonumber(ttl_ms) > 0 then
    redis.call('PEXPIRE', stream, ttl_ms)
    redis.call('PEXPIRE', stream .. ':seq', ttl_ms)
  end
  return {id, seq}
end
"""

PUBLISH = Script(
    "publish",
    _XADD_SEQ
    + """
-- KEYS: stream; ARGV: maxlen, ttl_ms, op, origin, event, body
return xadd_seq(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
""",
)

# The ban book's rules over BanRow arrays (3 status, 4 start, 5 end, 7 lifted_at): a row with an older start is
# stale; the same ban again is a no-op, except that a lift is stored once (a tombstone a re-applied ban does not
# revive); anything else replaces the stored row.
PUBLISH_BANS = Script(
    "publish_bans",
    _XADD_SEQ
    + """
local function newer(old, new)
  if not old then return true end
  local o = cmsgpack.unpack(old)
  local n = cmsgpack.unpack(new)
  if o[4] > n[4] then return false end
  if o[4] == n[4] and o[5] == n[5] and o[3] == n[3] then
    return o[7] == nil and n[7] ~= nil
  end
  return true
end
local function array_header(n)
  if n < 16 then return string.char(144 + n) end
  if n < 65536 then return struct.pack('>BH', 220, n) end
  return struct.pack('>BI4', 221, n)
end
-- KEYS: stream, set; ARGV: maxlen, op, origin, event, then field, row pairs
local changed = {}
for i = 5, #ARGV, 2 do
  if newer(redis.call('HGET', KEYS[2], ARGV[i]), ARGV[i + 1]) then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    changed[#changed + 1] = ARGV[i + 1]
  end
end
if #changed == 0 then return false end
local body = array_header(#changed) .. table.concat(changed)
return xadd_seq(KEYS[1], ARGV[1], 0, ARGV[2], ARGV[3], ARGV[4], body)
""",
)

ENSURE_EPOCH = Script(
    "ensure_epoch",
    """
-- KEYS: epoch; ARGV: a fresh epoch, kept only when none is set
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
""",
)

STREAM_TAIL = Script(
    "stream_tail",
    """
-- KEYS: epoch, stream; ARGV: a fresh epoch. Returns {epoch, last id, last seq} in one step.
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[1])
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #last == 0 then
  return {epoch, '0-0', tonumber(redis.call('GET', KEYS[2] .. ':seq') or '0')}
end
local fields = last[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 's' then return {epoch, last[1][1], tonumber(fields[i + 1])} end
end
return {epoch, last[1][1], 0}
""",
)

HEARTBEAT = Script(
    "heartbeat",
    _NOW
    + """
-- KEYS: members, member hash; ARGV: pid, ttl_ms, inbox key, inbox ttl_ms, then field, value pairs
local now = now_ms()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if #ARGV > 4 then redis.call('HSET', KEYS[2], unpack(ARGV, 5)) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', ARGV[3], ARGV[4])
redis.call('PEXPIRE', ARGV[3] .. ':seq', ARGV[4])
return now
""",
)

MEMBERS = Script(
    "members",
    _NOW
    + """
-- KEYS: members; ARGV: member key prefix. Returns {now, pid, expiry, hash, pid, expiry, hash...}
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ids = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {now}
for i = 1, #ids, 2 do
  out[#out + 1] = ids[i]
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. ids[i])
end
return out
""",
)

LEADER_ACQUIRE = Script(
    "leader_acquire",
    """
-- KEYS: leader, fence; ARGV: pid, ttl_ms. Returns {token or 0, the lease value now, its PTTL when not ours}
local cur = redis.call('GET', KEYS[1])
if cur then
  local p, tok = string.match(cur, '^(.*)|(%d+)$')
  if p == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {tonumber(tok), cur, 0}
  end
  return {0, cur, redis.call('PTTL', KEYS[1])}
end
local tok = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. '|' .. tok
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {tok, value, 0}
""",
)

LEADER_RENEW = Script(
    "leader_renew",
    """
-- KEYS: leader; ARGV: lease value, ttl_ms
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
""",
)

_COMPARE_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

LEADER_RELEASE = Script("leader_release", "-- KEYS: leader; ARGV: lease value" + _COMPARE_DELETE)

RELEASE = Script("owner_release", "-- KEYS: owner; ARGV: owner value" + _COMPARE_DELETE)

_FENCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED the lease is not held by this caller')
end
"""


def fenced(name: str, body: str) -> Script:
    """A script that runs ``body`` only while the caller holds the lease.

    ``body`` sees the leader key as ``KEYS[1]`` and the caller's ``pid|token`` as ``ARGV[1]``; its own keys and
    arguments follow. When the lease is another's the script fails with ``FENCED`` and writes nothing.
    """
    return Script(name, _FENCE + body)


FENCED_SET = fenced(
    "fenced_set",
    """
-- KEYS: leader, key; ARGV: lease, value
redis.call('SET', KEYS[2], ARGV[2])
return 1
""",
)

BANS_PRUNE = fenced(
    "bans_prune",
    """
-- KEYS: leader, ban set; ARGV: lease, then field, value pairs. A field is deleted only while it still holds the
-- value the leader read (a row changed since is kept). Returns how many were deleted.
local n = 0
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[2], ARGV[i])
    n = n + 1
  end
end
return n
""",
)

CLAIM = Script(
    "owner_claim",
    _NOW
    + _XADD_SEQ
    + """
-- KEYS: owner, members; ARGV: value, policy, inbox prefix, inbox maxlen, player, event, inbox ttl_ms, replace
-- Returns {'same'|'refused'|'claimed', previous value or '', 1 when a kick notice went to its inbox}
local prev = redis.call('GET', KEYS[1])
if prev == ARGV[1] then return {'same', prev, 0} end
local ppid = prev and string.match(prev, '^([^|]*)|')
local plive = false
if ppid and prev ~= ARGV[8] then
  local exp = redis.call('ZSCORE', KEYS[2], ppid)
  plive = exp and tonumber(exp) > now_ms()
end
if plive and ARGV[2] == 'refuse_newer' then return {'refused', prev, 0} end
redis.call('SET', KEYS[1], ARGV[1])
local mine = string.match(ARGV[1], '^([^|]*)|')
if plive and ARGV[2] == 'kick_older' and ppid ~= mine then
  xadd_seq(ARGV[3] .. ppid, ARGV[4], ARGV[7], 'kick', mine, ARGV[6], cmsgpack.pack({ARGV[5], prev, ARGV[1]}))
  return {'claimed', prev, 1}
end
return {'claimed', prev or '', 0}
""",
)

REPLY = Script(
    "reply",
    """
-- KEYS: the reply list; ARGV: the answer, its expiry (ms). One step: a reply key never stays without an expiry.
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
""",
)

ALL_SCRIPTS = (
    PUBLISH,
    PUBLISH_BANS,
    ENSURE_EPOCH,
    STREAM_TAIL,
    HEARTBEAT,
    MEMBERS,
    LEADER_ACQUIRE,
    LEADER_RENEW,
    LEADER_RELEASE,
    RELEASE,
    FENCED_SET,
    BANS_PRUNE,
    CLAIM,
    REPLY,
)
