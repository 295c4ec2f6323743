-- wrk script: send the requests of a mix in turn, count responses outside 2xx,
-- stop after a maximum number of responses, and print one JSON summary line.
--
-- Usage: wrk -t1 -c N -d S -s bench/wrk_mix.lua URL -- REQUESTS_FILE MAX_REQUESTS
-- REQUESTS_FILE is a Lua file returning a list of
-- {method = ..., path = ..., headers = {...}, body = ... or nil},
-- as bench/run.py writes it.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local specs = dofile(args[1])
   max_requests = tonumber(args[2])
   prepared = {}
   for index, spec in ipairs(specs) do
      prepared[index] = wrk.format(spec.method, spec.path, spec.headers, spec.body)
   end
   next_index = 0
   response_count = 0
   unexpected = 0
   first_unexpected = nil
end

function request()
   next_index = next_index % #prepared + 1
   return prepared[next_index]
end

function response(status, headers, body)
   response_count = response_count + 1
   if status < 200 or status > 299 then
      unexpected = unexpected + 1
      first_unexpected = first_unexpected or status
   end
   if response_count >= max_requests then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local unexpected_total = 0
   local first_status = nil
   for _, thread in ipairs(threads) do
      unexpected_total = unexpected_total + thread:get("unexpected")
      first_status = first_status or thread:get("first_unexpected")
   end

   local errors = summary.errors
   local failed = errors.connect + errors.read + errors.write + errors.timeout
   local first_error = "null"
   if first_status then
      first_error = string.format('"status %d"', first_status)
   end

   io.write(string.format(
      'BENCH_JSON {"requests": %d, "seconds": %.6f, "p50_ms": %.4f, '
         .. '"p99_ms": %.4f, "unexpected_status": %d, "failed": %d, '
         .. '"first_error": %s}\n',
      summary.requests, summary.duration / 1e6,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      unexpected_total, failed, first_error))
end
