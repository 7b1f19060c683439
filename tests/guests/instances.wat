;; instances.wat: a module to run as several instances (tests/host/test_instances.py).
;; Each instance has its own memory: `calls` counts the calls into this one.
;; `hit` adds 1 to "hits" in the named map "counter" (granted); `meet` waits
;; (a bounded number of polls of the host's env.count) until `want` calls are
;; inside the module at once; `hold` calls env.hold, which the host blocks;
;; `make` opens a new map and keeps its handle (`make_meet` too, then meets);
;; `boom` traps.
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "incr" (func $incr (param i32 i32 i32 i64 i32) (result i32)))
  (import "env" "arrive" (func $arrive))
  (import "env" "count" (func $count (result i32)))
  (import "env" "hold" (func $hold))
  (memory (export "memory") 1)
  (data (i32.const 16) "counter")
  (data (i32.const 32) "hits")
  (global $calls (mut i32) (i32.const 0))
  (func (export "calls") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (global.get $calls))
  (func (export "hit") (result i64)
    (if (i32.eqz (i32.load (i32.const 100)))
      (then
        (drop (call $open (i32.const 16) (i32.const 7) (i32.const 3) (i32.const 104)))
        (i32.store (i32.const 100) (i32.const 1))))
    (drop (call $incr (i32.load (i32.const 104)) (i32.const 32) (i32.const 4) (i64.const 1)
      (i32.const 8)))
    (i64.load (i32.const 8)))
  (func $meet (export "meet") (param $want i32) (result i32) (local $polls i32)
    (call $arrive)
    (block $done (loop $l
      (br_if $done (i32.ge_s (call $count) (local.get $want)))
      (local.set $polls (i32.add (local.get $polls) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $polls) (i32.const 1000000)))
      (return (i32.const 0))))
    (i32.const 1))
  (func (export "hold") (call $hold))
  (func (export "make") (result i32) (drop (call $new (i32.const 0))) (i32.load (i32.const 0)))
  ;; make_meet(want): make a map, then meet: two calls that meet hold two instances
  (func (export "make_meet") (param $want i32) (result i32)
    (drop (call $new (i32.const 0)))
    (call $meet (local.get $want)))
  (func (export "boom") unreachable))
