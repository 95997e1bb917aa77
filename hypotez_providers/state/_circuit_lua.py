"""The circuit breaker's state machine in Lua, run by Redis atomically (one script per call).

It is :mod:`hypotez_providers.health`'s pure functions (``admit_record``, ``succeed_record``,
``fail_record``, ``release_record``) written once more for Redis; the tests hold the two to
the same behaviour. A record is a hash ``KEYS[1]`` (``st`` closed/open/half-open as
``c``/``o``/``h``, ``cf`` consecutive failures, ``ou`` open until, ``du`` demoted until,
``pt``/``pu`` probe token and lease end, ``s``/``f`` successes and failures) and a list
``KEYS[2]`` of recent outcomes (``"1:<time>"`` or ``"0:<time>"``, at most 1000) for the
failure rate. Both expire ``TTL`` milliseconds after the last write.

``ARGV[1]`` is the time to use (empty: Redis' own ``TIME``, the one clock of every process);
``ARGV[2]`` the ages in seconds, comma-separated, of successes this process kept to itself
since its last script (a clean circuit's successes cost no round trip), recorded first.
Every script answers ``{permit, token, st, cf, ou, du, pu, now, s, f}`` (numbers as strings,
for Redis would truncate Lua floats to integers).
"""

from __future__ import annotations

from ..health import HealthPolicy

#: Most outcomes kept for the failure rate, as the in-memory record keeps.
RECENT = 1000

_PRELUDE = """
local key, recent = KEYS[1], KEYS[2]
local function num(value) return value and tonumber(value) or 0 end
local function fmt(value) return string.format('%.17g', value) end
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local h = redis.call('HMGET', key, 'st', 'cf', 'ou', 'du', 'pt', 'pu', 's', 'f')
local r = {st = h[1] or 'c', cf = num(h[2]), ou = num(h[3]), du = num(h[4]), pt = num(h[5]),
           pu = num(h[6]), s = num(h[7]), f = num(h[8])}
local dirty = false
local function push(ok, at)
  redis.call('RPUSH', recent, ok .. ':' .. fmt(at))
  dirty = true
end
if ARGV[2] ~= '' then
  for age in string.gmatch(ARGV[2], '[^,]+') do
    push('1', now - tonumber(age))
    r.s = r.s + 1
  end
end
local function save()
  if not dirty then return end
  redis.call('HSET', key, 'st', r.st, 'cf', r.cf, 'ou', fmt(r.ou), 'du', fmt(r.du),
             'pt', r.pt, 'pu', fmt(r.pu), 's', r.s, 'f', r.f)
  redis.call('LTRIM', recent, -RECENT, -1)
  redis.call('PEXPIRE', key, TTL)
  redis.call('PEXPIRE', recent, TTL)
end
local function reply(permit, token)
  save()
  return {permit, tostring(token), r.st, tostring(r.cf), fmt(r.ou), fmt(r.du), fmt(r.pu),
          fmt(now), tostring(r.s), tostring(r.f)}
end
local function open(seconds)
  r.st = 'o'
  r.ou = now + seconds
  r.pu = 0
  dirty = true
end
"""

_ADMIT = """
if r.st == 'c' then return reply('1', 0) end
if r.st == 'o' then
  if now < r.ou then return reply('0', 0) end
  r.st = 'h'
elseif r.pu > now then
  return reply('0', 0)
end
r.pt = r.pt + 1
r.pu = now + LEASE
dirty = true
return reply('2', r.pt)
"""

# ARGV[3]: '1' for a probe's permit, ARGV[4]: its token.
_SUCCEED = """
local probe = ARGV[3] == '1' and tonumber(ARGV[4]) == r.pt
r.s = r.s + 1
dirty = true
if r.st ~= 'c' then
  if not probe then
    push('1', now)
    return reply('1', 0)
  end
  redis.call('DEL', recent)
  r.st = 'c'
  r.pu = 0
end
r.cf = 0
r.du = 0
push('1', now)
return reply('1', 0)
"""

# ARGV[3], ARGV[4]: as for success; ARGV[5]: seconds to open for; ARGV[6]: '1' to open now.
_FAIL = """
local probe = ARGV[3] == '1' and tonumber(ARGV[4]) == r.pt
r.f = r.f + 1
push('0', now)
if r.st == 'o' then return reply('1', 0) end
if r.st == 'h' then
  if probe then open(tonumber(ARGV[5])) end
  return reply('1', 0)
end
r.cf = r.cf + 1
r.du = now + COOLDOWN
local opens = ARGV[6] == '1' or r.cf >= THRESHOLD
if not opens then
  local calls, failures = 0, 0
  for _, entry in ipairs(redis.call('LRANGE', recent, 0, -1)) do
    if tonumber(string.sub(entry, 3)) >= now - WINDOW then
      calls = calls + 1
      if string.sub(entry, 1, 1) == '0' then failures = failures + 1 end
    end
  end
  opens = calls >= MIN_CALLS and failures / calls >= RATE
end
if opens then open(tonumber(ARGV[5])) end
return reply('1', 0)
"""

# ARGV[3], ARGV[4]: as for success.
_RELEASE = """
if ARGV[3] == '1' and tonumber(ARGV[4]) == r.pt then
  r.pu = 0
  dirty = true
end
return reply('1', 0)
"""

_READ = """
return reply('1', 0)
"""


def ttl_ms(policy: HealthPolicy) -> int:
    """How long a record outlives its last write: long past any cooldown, window or lease."""
    longest = max(policy.cooldown, policy.max_cooldown) + policy.window + policy.probe_lease
    return int(max(2 * longest, 60.0) * 1000)


def scripts(policy: HealthPolicy) -> dict[str, str]:
    """Each operation's Lua source, with ``policy``'s numbers written in as constants."""
    constants = (
        f"local TTL = {ttl_ms(policy)}\n"
        f"local RECENT = {RECENT}\n"
        f"local LEASE = {policy.probe_lease!r}\n"
        f"local COOLDOWN = {policy.cooldown!r}\n"
        f"local THRESHOLD = {policy.failure_threshold}\n"
        f"local WINDOW = {policy.window!r}\n"
        f"local MIN_CALLS = {policy.min_calls}\n"
        f"local RATE = {policy.failure_rate!r}\n"
    )
    bodies = {
        "admit": _ADMIT,
        "succeed": _SUCCEED,
        "fail": _FAIL,
        "release": _RELEASE,
        "read": _READ,
    }
    return {name: constants + _PRELUDE + body for name, body in bodies.items()}
