-- POST {"product_id": ..., "quantity": 1} to the URL given to wrk.
-- Shoppers' carts of five adds each: the first add starts the cart (no token), the other four
-- send the cart's token (X-Cart-Token of its first answer). A thread's connections all share
-- this script's state, so the carts are kept in a pool: a request takes the token of a cart
-- with adds left if there is one, else starts a new cart, whose token joins the pool when its
-- answer arrives. So one add in five starts a cart, whatever the connections' interleaving.
-- Products rotate over BENCH_PRODUCTS.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local products = {}
for id in string.gmatch(os.getenv("BENCH_PRODUCTS") or "espresso", "[^,]+") do
  products[#products + 1] = id
end
local ADDS_PER_CART = 5
local n = 0
local open = {} -- tokens of carts with adds left, most recent last
local left = {} -- token -> adds left
-- Every answer about a cart carries its token: only the first one pools it.
local seen = {}

request = function()
  n = n + 1
  local headers = { ["Content-Type"] = "application/json" }
  local token = open[#open]
  if token ~= nil then
    headers["X-Cart-Token"] = token
    left[token] = left[token] - 1
    if left[token] == 0 then
      open[#open] = nil
      left[token] = nil
    end
  end
  local body = '{"product_id":"' .. products[(n % #products) + 1] .. '","quantity":1}'
  return wrk.format("POST", nil, headers, body)
end

response = function(status, headers, body)
  count(status)
  local issued = headers["x-cart-token"] or headers["X-Cart-Token"]
  if issued ~= nil and not seen[issued] then
    seen[issued] = true
    left[issued] = ADDS_PER_CART - 1
    open[#open + 1] = issued
  end
end
