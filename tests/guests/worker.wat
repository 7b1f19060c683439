;; worker.wat: a guest loop for the thread tests.  run(n) opens the named map
;; "tally" (rw) and a new map, then n times: incr tally["hits"] by 1, set
;; m["k"] = i and read it back, incr m["sum"] by i.  It closes both handles
;; and returns the final sum, n(n-1)/2, or a negative step code on the first
;; call that fails.
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "incr" (func $incr (param i32 i32 i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "tally")
  (data (i32.const 32) "hits")
  (data (i32.const 48) "k")
  (data (i32.const 56) "sum")
  ;; 0x100 out handle, 0x108 out i64, 0x110 out len, 0x200 value to set, 0x210 get buffer
  (func (export "run") (param $n i32) (result i64)
    (local $tally i32) (local $m i32) (local $i i32)
    (if (call $open (i32.const 16) (i32.const 5) (i32.const 3) (i32.const 0x100))
      (then (return (i64.const -1))))
    (local.set $tally (i32.load (i32.const 0x100)))
    (if (call $new (i32.const 0x100)) (then (return (i64.const -2))))
    (local.set $m (i32.load (i32.const 0x100)))
    (i64.store (i32.const 0x108) (i64.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (call $incr (local.get $tally) (i32.const 32) (i32.const 4) (i64.const 1) (i32.const 0x108))
          (then (return (i64.const -3))))
        (i64.store (i32.const 0x200) (i64.extend_i32_u (local.get $i)))
        (if (call $set (local.get $m) (i32.const 48) (i32.const 1) (i32.const 0x200) (i32.const 8))
          (then (return (i64.const -4))))
        (if (call $get (local.get $m) (i32.const 48) (i32.const 1) (i32.const 0x210) (i32.const 8) (i32.const 0x110))
          (then (return (i64.const -5))))
        (if (i64.ne (i64.load (i32.const 0x210)) (i64.extend_i32_u (local.get $i)))
          (then (return (i64.const -6))))
        (if (call $incr (local.get $m) (i32.const 56) (i32.const 3) (i64.extend_i32_u (local.get $i)) (i32.const 0x108))
          (then (return (i64.const -7))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (call $close (local.get $m)) (then (return (i64.const -8))))
    (if (call $close (local.get $tally)) (then (return (i64.const -9))))
    (i64.load (i32.const 0x108)))
)
