-- wrk-static.lua - one fixed signed request (bench/webhook.sh, bench/flood.sh).
-- args: FILE MODE: FILE's first line is "<hex hmac> <body>"; MODE "bad"
-- sends it with a wrong signature.  No request(): wrk pre-builds the
-- request once (its fast path).
function init(args)
	local line = io.lines(args[1])()
	local sp = line:find(" ")
	local sig = line:sub(1, sp - 1)
	if args[2] == "bad" then sig = string.rep("0", 64) end
	wrk.method = "POST"
	wrk.body = line:sub(sp + 1)
	wrk.headers["Content-Type"] = "application/json"
	wrk.headers["X-GitHub-Event"] = "push"
	wrk.headers["X-GitHub-Delivery"] = "bench-static"
	wrk.headers["X-Hub-Signature-256"] = "sha256=" .. sig
end
