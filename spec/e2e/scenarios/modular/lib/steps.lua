-- lib/steps.lua: the session of modular.lua.
return function(vu)
  local cart = nil
  return cart.items -- line 4: attempt to index a nil value
end
