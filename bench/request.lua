-- One wrk script for every endpoint. Arguments after "--": METHOD TOKEN BODY PHONES [FIRST],
-- "-" for none. BODY may hold {phone}, replaced in turn by each of the comma-separated PHONES,
-- or, when PHONES is "new:" and a prefix, by a number never used before in this run: the prefix
-- and 7 digits, each thread counting in its own block of a million above the test phones, from
-- FIRST (0 by default; a later round of the same endpoint starts past the numbers any thread used).
-- done() prints one machine-readable line: the counts and the latency quantiles of the run.

local threads = {}

function setup(thread)
   thread:set("offset", #threads)
   table.insert(threads, thread)
end

function init(args)
   local method, token, body, phone_list = args[1], args[2], args[3], args[4]
   first = tonumber(args[5] or "0")
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
   new_prefix = nil
   if phone_list and string.sub(phone_list, 1, 4) == "new:" then
      new_prefix = string.sub(phone_list, 5)
   elseif phone_list and phone_list ~= "-" then
      for phone in string.gmatch(phone_list, "[^,]+") do
         table.insert(phones, phone)
      end
   end
   non2xx = 0
   counter = offset
   if #phones == 0 and not new_prefix then
      fixed_request = wrk.format(method, nil, headers, body)
   else
      request_method, request_headers, request_body = method, headers, body
   end
end

function request()
   if fixed_request then
      return fixed_request
   end
   local phone
   if new_prefix then
      sent = (sent or 0) + 1
      phone = new_prefix .. string.format("%07d", (offset + 1) * 1000000 + first + sent)
   else
      counter = counter + 1
      phone = phones[counter % #phones + 1]
   end
   return wrk.format(request_method, nil, request_headers, (string.gsub(request_body, "{phone}", phone)))
end

-- wrk itself counts only >= 400 as errors; a 3xx (an HTTPS redirect, say) must fail the run too.
function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

-- The latency at every 0.1th percentile (this wrk's stats object offers no histogram) lets the
-- runner merge the rounds of an endpoint, each quantile standing for a thousandth of its requests.
function done(summary, latency, requests)
   local bad = 0
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("non2xx")
   end
   local errors = summary.errors
   -- The most new phones any thread took (requests cut off at the end took theirs too): the next
   -- round of this endpoint starts past them.
   local new_phones = 0
   for _, thread in ipairs(threads) do
      new_phones = math.max(new_phones, thread:get("sent") or 0)
   end
   local quantiles = {}
   if summary.requests > 0 then
      for tenth = 1, 999 do
         table.insert(quantiles, string.format("%d", latency:percentile(tenth / 10)))
      end
      -- Not percentile(100): wrk ranks it one past its last request and answers 0.
      table.insert(quantiles, string.format("%d", latency.max))
   end
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, '
         .. '"new_phones": %d, "latency_quantiles_us": [%s]}\n',
      summary.requests, summary.duration, bad,
      errors.connect + errors.read + errors.write + errors.timeout,
      new_phones, table.concat(quantiles, ", ")
   ))
end
