;; store_trap.wat: opens the named map "hits" (granted by the manifest) and adds 1
;; to its key "hits"; traps when either answers an errno (a store that is down
;; answers IO), so a failed store ends the run with a trap.  Returns the count.
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "incr" (func $incr (param i32 i32 i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hits")
  (func (export "main") (result i64)
    ;; open("hits", READ|WRITE) -> handle at 0
    (if (call $open (i32.const 16) (i32.const 4) (i32.const 3) (i32.const 0)) (then unreachable))
    ;; incr(h, "hits", 1) -> the new count at 8
    (if (call $incr (i32.load (i32.const 0)) (i32.const 16) (i32.const 4) (i64.const 1)
                    (i32.const 8))
      (then unreachable))
    (i64.load (i32.const 8))))
