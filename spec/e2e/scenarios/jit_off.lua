-- jit.off() at the top level: the top level runs without the compiler anyway (so that an endless
-- loop there can be stopped), and the wish must hold once it has returned. JIT=on asks the opposite.
if parrot.env.JIT == "on" then jit.on() else jit.off() end
return parrot.scenario {
  name = "jit_off",
  load = parrot.closed { vus = 1, iterations = 1 },
  run = function() io.stdout:write("jit in a VU: ", tostring(jit.status()), "\n") end,
}
