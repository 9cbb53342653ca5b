-- wrk script for bench/fleet.sh: one node's share of the fleet's load.
-- MIX=mixed: 60 % profile reads, 20 % consent changes, 20 % creates;
-- MIX=read: profile reads only; MIX=consent: consent changes only;
-- MIX=create: creates only. Ids of seeded customers come from $IDS, the
-- tokens from $AGENT, $COMPLIANCE and $SERVICE; $NODE keeps the numbers of
-- one node's creates apart from the others'. With $STOP_AFTER set, the
-- (single) thread stops after that many answers and creates the file $DONE
-- (wrk itself runs on to its -d; bench/fleet.sh interrupts it then).
local mix = os.getenv("MIX") or "mixed"
local ids = {}
if mix ~= "create" then
  for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
end
local agent = "Bearer " .. (os.getenv("AGENT") or "")
local compliance = "Bearer " .. (os.getenv("COMPLIANCE") or "")
local service = "Bearer " .. (os.getenv("SERVICE") or "")
local node = tonumber(os.getenv("NODE") or "0")
local stop_after = tonumber(os.getenv("STOP_AFTER") or "0")
local n, answered = 0, 0
math.randomseed(42 + node)

local function read()
  return wrk.format("GET", "/v1/customers/" .. ids[math.random(#ids)] .. "?purpose=support",
    { ["authorization"] = agent })
end

local function consent()
  local body
  if math.random(2) == 1 then
    body = '{"purpose":"cross_channel","channel":"email","action":"grant","method":"spoken",' ..
      '"evidence":{"notice_id":"privacy-notice","notice_version":"3"}}'
  else
    body = '{"purpose":"cross_channel","channel":"email","action":"withdraw","method":"spoken"}'
  end
  return wrk.format("POST", "/v1/customers/" .. ids[math.random(#ids)] .. "/consents",
    { ["authorization"] = compliance, ["content-type"] = "application/json" }, body)
end

local function create()
  n = n + 1
  local body = string.format(
    '{"display_name":"Fleet %d-%d","contacts":[{"channel":"phone","value":"+35840%d%06d"},' ..
    '{"channel":"email","value":"fleet%d-%d@example.com"}]}', node, n, node, n, node, n)
  return wrk.format("POST", "/v1/customers",
    { ["authorization"] = service, ["content-type"] = "application/json" }, body)
end

local k = 0
request = function()
  k = k + 1
  if mix == "read" then return read() end
  if mix == "consent" then return consent() end
  if mix == "create" then return create() end
  local r = k % 10
  if r < 6 then return read() elseif r < 8 then return consent() else return create() end
end

response = function(status, headers, body)
  answered = answered + 1
  if stop_after > 0 and answered == stop_after then
    local f = io.open(os.getenv("DONE"), "w")
    if f then f:close() end
    wrk.thread:stop()
  end
end
