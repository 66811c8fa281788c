-- wrk script for bench/gateway_load.py's settled-turns run: short non-streamed turns, each with its own
-- turn id, round robin over the access tokens in a file (one per line; none: the fake API's key instead).
-- Usage: wrk -s gateway_turns.lua URL -- TOKENS_FILE RUN_PREFIX
-- Prints one JSON line when done: requests, non-2xx answers, socket errors and the duration.

local body = '{"model":"claude-haiku-4-5-20251001","max_tokens":50,'
  .. '"messages":[{"role":"user","content":"Short. [[fake:words=3]]"}]}'
local threads = {}
local tokens = {}
local prefix = "run"
local counter = 0

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
  return wrk.format(nil, "/v1/messages", headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"non_2xx":%d,"socket_errors":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
