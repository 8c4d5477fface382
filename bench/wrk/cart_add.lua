-- POST {"product_id": ..., "quantity": 1} to the URL given to wrk.
-- A shopper's cart: the token of the first answer (X-Cart-Token) is sent with the next adds,
-- five lines per cart, then a new cart starts. Products rotate over BENCH_PRODUCTS.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local products = {}
for id in string.gmatch(os.getenv("BENCH_PRODUCTS") or "espresso", "[^,]+") do
  products[#products + 1] = id
end
local LINES_PER_CART = 5
local n = 0
local token = nil
local used = 0
-- Answers to adds with an old token arrive after a new cart should start: take only tokens
-- not seen before (a cart's token is always the same), so no cart grows past its five lines.
local seen = {}

request = function()
  n = n + 1
  local headers = { ["Content-Type"] = "application/json" }
  if token ~= nil then
    headers["X-Cart-Token"] = token
    used = used + 1
    if used >= LINES_PER_CART - 1 then
      token = nil
    end
  end
  local body = '{"product_id":"' .. products[(n % #products) + 1] .. '","quantity":1}'
  return wrk.format("POST", nil, headers, body)
end

response = function(status, headers, body)
  count(status)
  if token == nil then
    local issued = headers["x-cart-token"] or headers["X-Cart-Token"]
    if issued ~= nil and not seen[issued] then
      seen[issued] = true
      token = issued
      used = 0
    end
  end
end
