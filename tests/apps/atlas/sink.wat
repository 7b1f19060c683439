;; sink.wat ("sink"): keeps what it is given: a shared handle (keep), a
;; moved one (take), or a read-only clone of a borrowed one (copy, which
;; closes the borrow as a careful callee does).
(module
  (import "wasi_map" "clone" (func $clone (param i32 i32 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  ;; 0x00 out handle; 0x200.. the table of kept handles
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))
  (func $remember (param $h i32) (result i32)
    (i32.store (i32.add (i32.const 0x200) (i32.shl (global.get $count) (i32.const 2)))
               (local.get $h))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (global.get $count))
  (func (export "keep") (param $h i32) (result i32) (call $remember (local.get $h)))
  (func (export "take") (param $h i32) (result i32) (call $remember (local.get $h)))
  (func (export "copy") (param $h i32) (result i32)
    (if (call $clone (local.get $h) (i32.const 1) (i32.const 0)) (then unreachable))
    (if (call $close (local.get $h)) (then unreachable))
    (call $remember (i32.load (i32.const 0))))
)
