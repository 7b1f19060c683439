;; spin.wat: a guest that never returns, for the time-limit tests (test/deadline.test.js).
;; `new` makes a map (its handle kept, so a teardown shows in stats);
;; `spin` loops forever; `busy n` loops n times and returns n; the drop
;; handler loops forever; `recurse` calls itself forever, with no loop.
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "watch_drop" (func $watch_drop (param i32 i64) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "new") (result i32)
    (local $err i32)
    (local.set $err (call $new (i32.const 0)))
    (if (result i32) (local.get $err)
      (then (i32.sub (i32.const 0) (local.get $err)))
      (else (i32.load (i32.const 0)))))
  (func (export "watch") (param i32) (result i32) (call $watch_drop (local.get 0) (i64.const 1)))
  (func (export "close") (param i32) (result i32) (call $close (local.get 0)))
  (func (export "ok") (result i32) (i32.const 7))
  (func (export "spin") (loop $forever (br $forever)))
  (func (export "busy") (param $n i32) (result i32)
    (local $i i32)
    (loop $next
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func $recurse (export "recurse") (call $recurse))
  (func (export "wasi_map_on_drop") (param i64) (loop $forever (br $forever)))
)
