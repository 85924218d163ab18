-- wrk-dynamic.lua - distinct signed requests (bench/webhook.sh): each wrk
-- thread formats its slice of FILE's "<hex hmac> <body>" lines in init(),
-- before the clock starts, and request() only hands the next one out
-- (formatting them in request() cost wrk ~60 us of CPU per request, on
-- the same cores as the server it measures).
local counter = 0
function setup(thread)
	thread:set("tid", counter)
	counter = counter + 1
end
-- args: FILE MODE NTHREADS FIRST COUNT: this round's bodies are lines
-- FIRST+1 .. FIRST+COUNT, thread tid takes every NTHREADS-th of them.
function init(args)
	local nthreads = tonumber(args[3])
	local first = tonumber(args[4])
	local last = first + tonumber(args[5])
	local h = {["Content-Type"] = "application/json",
	           ["X-GitHub-Event"] = "push"}
	local n = 0
	reqs = {}
	for line in io.lines(args[1]) do
		n = n + 1
		if n > last then break end
		if n > first and (n - first - 1) % nthreads == tid then
			local sp = line:find(" ")
			h["X-Hub-Signature-256"] = "sha256=" .. line:sub(1, sp - 1)
			h["X-GitHub-Delivery"] = "bench-" .. n
			reqs[#reqs + 1] = wrk.format("POST", nil, h, line:sub(sp + 1))
		end
	end
	idx = 0
end
function request()
	idx = idx % #reqs + 1
	return reqs[idx]
end
