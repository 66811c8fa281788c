-- wrk script for bench/gateway_load.py's load: turns each with its own turn id, round robin over the
-- access tokens in a file (one per line; "-": the fake API's key instead).
--   short:  short non-streamed turns (the settled-turns run)
--   stream: streams paced like a real answer, 500 to 1,500 words (1,000 on average) at a delta every 50 ms
--           (the background streams of the time-to-first-token run; wrk reads them in C and starts the next
--           turn when one ends). The lengths differ so that the streams do not all end, and start again, at
--           the same moment, as 200 users' answers would not: with one length, all 200 restarted at once every
--           few seconds, and a probe that met that wave measured it rather than the gateway. For the same
--           reason each connection's first turn starts after a random wait of up to a second: started
--           together, all the streams sent their deltas in the same instant of each 50 ms.
-- Usage: wrk -s gateway_wrk.lua URL -- TOKENS_FILE RUN_PREFIX short|stream [CONNECTIONS]
-- Prints one JSON line when done: requests, non-2xx answers, socket errors and the duration.

local bodies = {
  short = '{"model":"claude-haiku-4-5-20251001","max_tokens":50,'
    .. '"messages":[{"role":"user","content":"Short. [[fake:words=3]]"}]}',
  stream = '{"model":"claude-haiku-4-5-20251001","max_tokens":2000,"stream":true,'
    .. '"messages":[{"role":"user","content":"Background essay. [[fake:words=%d slow=0.05]]"}]}',
}
local body = bodies.short
local kind = "short"
local threads = {}
local tokens = {}
local prefix = "run"
local counter = 0
local connections = 0  -- in stream mode, the first turn of each is started after a random wait

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  if args[1] ~= nil and args[1] ~= "-" then
    for line in io.lines(args[1]) do
      if line ~= "" then table.insert(tokens, line) end
    end
  end
  prefix = (args[2] or "run") .. "-" .. tostring(thread_index)
  kind = args[3] or "short"
  connections = tonumber(args[4] or "0")
  body = bodies[kind]
  math.randomseed(1000 + thread_index)  -- the same lengths in every run
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Anthropic-Version"] = "2023-06-01"
  wrk.headers["Switchboard-Model"] = "claude-haiku-4.5"
  if #tokens == 0 then wrk.headers["X-Api-Key"] = "sk-bench-0000000000000000" end
end

function request()
  counter = counter + 1
  local headers = wrk.headers
  if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1] end
  headers["Switchboard-Turn-Id"] = prefix .. "-" .. counter
  if kind == "stream" then
    return wrk.format(nil, "/v1/messages", headers, string.format(body, math.random(500, 1500)))
  end
  return wrk.format(nil, "/v1/messages", headers, body)
end

function delay()
  -- Called before each request: the first `connections` are each connection's first turn.
  if kind == "stream" and counter < connections then return math.random(0, 1000) end
  return 0
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"non_2xx":%d,"socket_errors":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
