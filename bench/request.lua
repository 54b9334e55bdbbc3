-- One wrk script for every endpoint. Arguments after "--": METHOD TOKEN BODY PHONES,
-- "-" for none. BODY may hold {phone}, replaced in turn by each of the comma-separated PHONES.
-- done() prints one machine-readable line: the counts and latency percentiles of the run.

local threads = {}

function setup(thread)
   thread:set("offset", #threads)
   table.insert(threads, thread)
end

function init(args)
   local method, token, body, phone_list = args[1], args[2], args[3], args[4]
   local headers = {}
   if token ~= "-" then
      headers["Authorization"] = "Bearer " .. token
   end
   if body ~= "-" then
      headers["Content-Type"] = "application/json"
   else
      body = nil
   end
   phones = {}
   if phone_list and phone_list ~= "-" then
      for phone in string.gmatch(phone_list, "[^,]+") do
         table.insert(phones, phone)
      end
   end
   non2xx = 0
   counter = offset
   if #phones == 0 then
      fixed_request = wrk.format(method, nil, headers, body)
   else
      request_method, request_headers, request_body = method, headers, body
   end
end

function request()
   if fixed_request then
      return fixed_request
   end
   counter = counter + 1
   local phone = phones[counter % #phones + 1]
   return wrk.format(request_method, nil, request_headers, (string.gsub(request_body, "{phone}", phone)))
end

-- wrk itself counts only >= 400 as errors; a 3xx (an HTTPS redirect, say) must fail the run too.
function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local bad = 0
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("non2xx")
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, '
         .. '"p50_us": %d, "p99_us": %d}\n',
      summary.requests, summary.duration, bad,
      errors.connect + errors.read + errors.write + errors.timeout,
      latency:percentile(50), latency:percentile(99)
   ))
end
