-- wrk script: GET random customer profiles as a phone agent.
-- Reads ids from $IDS (one per line) and the token from $TOKEN.
local ids = {}
for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
local token = os.getenv("TOKEN")
math.randomseed(42)
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/v1/customers/" .. id .. "?purpose=support",
    { ["authorization"] = "Bearer " .. token })
end
