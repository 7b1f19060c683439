;; store_counter.wat: opens the named map "counter" (granted by the manifest),
;; adds 1 to its key "hits" and returns the new count.  With a persistent
;; store the count goes on from run to run.  An error returns -errno.
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "incr" (func $incr (param i32 i32 i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "counter")
  (data (i32.const 32) "hits")
  (func (export "main") (result i64)
    (local $err i32)
    ;; open("counter", READ|WRITE) -> handle at 0
    (local.set $err (call $open (i32.const 16) (i32.const 7) (i32.const 3) (i32.const 0)))
    (if (local.get $err) (then (return (i64.sub (i64.const 0) (i64.extend_i32_u (local.get $err))))))
    ;; incr(h, "hits", 1) -> the new count at 8
    (local.set $err
      (call $incr (i32.load (i32.const 0)) (i32.const 32) (i32.const 4) (i64.const 1) (i32.const 8)))
    (if (local.get $err) (then (return (i64.sub (i64.const 0) (i64.extend_i32_u (local.get $err))))))
    (i64.load (i32.const 8)))
)
