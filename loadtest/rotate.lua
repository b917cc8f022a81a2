-- rotate.lua: a wrk script for scripts/load.sh.
--
--   LOAD_REPLICAS=127.0.0.1:8081,127.0.0.1:8082 \
--     wrk -t2 -c32 -d15s --latency -s loadtest/rotate.lua http://127.0.0.1:8081 \
--     -- cookies.txt /demo/openai 500000
--
-- Threads are spread over the replicas in LOAD_REPLICAS (thread 1 on the
-- first, thread 2 on the second, …). Every thread sends GET <path> with
-- Accept: application/json, rotating over the users' Cookie headers in
-- cookies.txt (one line per user, as loadtest/seed writes them), each thread
-- starting at another user. A thread stops after <max> requests (0: no
-- limit), so a run is bounded in count as well as by -d. When it ends, one
-- line starting "RESULT" gives the figures scripts/load.sh prints.

local addrs = {}
local threads = 0

function setup(thread)
  if #addrs == 0 then
    local list = os.getenv("LOAD_REPLICAS") or ""
    for hostport in string.gmatch(list, "[^,]+") do
      local host, port = string.match(hostport, "^([^:]+):(%d+)$")
      if host then
        local found = wrk.lookup(host, port)
        if found and found[1] then
          table.insert(addrs, found[1])
        end
      end
    end
  end
  threads = threads + 1
  if #addrs > 0 then
    thread.addr = addrs[(threads - 1) % #addrs + 1]
  end
  thread:set("id", threads)
end

local requests = {}
local next_request = 0
local sent = 0
local max = 0

function init(args)
  local file, path = args[1], args[2]
  max = tonumber(args[3] or "0") or 0
  for line in io.lines(file) do
    if line ~= "" then
      table.insert(requests, wrk.format("GET", path, { ["Cookie"] = line, ["Accept"] = "application/json" }))
    end
  end
  if #requests == 0 then
    error("rotate.lua: no cookies in " .. file)
  end
  next_request = ((id or 1) - 1) * 7919 % #requests
end

function request()
  sent = sent + 1
  if max > 0 and sent > max then
    wrk.thread:stop()
  end
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d errors_status=%d errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
