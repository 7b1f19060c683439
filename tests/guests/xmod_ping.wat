;; xmod_ping.wat: one half of a mutual import, loaded as "ping"; its partner
;; is xmod_pong.wat ("pong").  ping(n) = 0 when n is 0, else
;; 10 * pong(n - 1) + 1, so the digits of the result show the calls
;; alternated (ping(4) = 2121).  No wasi_map imports, so no memory.
(module
  (import "pong" "pong" (func $pong (param i32) (result i32)))
  (func (export "ping") (param $n i32) (result i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))
    (i32.add (i32.mul (call $pong (i32.sub (local.get $n) (i32.const 1))) (i32.const 10))
             (i32.const 1)))
)
