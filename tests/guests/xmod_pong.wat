;; xmod_pong.wat: the other half of the mutual import in xmod_ping.wat,
;; loaded as "pong": pong(n) = 0 when n is 0, else 10 * ping(n - 1) + 2.
(module
  (import "ping" "ping" (func $ping (param i32) (result i32)))
  (func (export "pong") (param $n i32) (result i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))
    (i32.add (i32.mul (call $ping (i32.sub (local.get $n) (i32.const 1))) (i32.const 10))
             (i32.const 2)))
)
