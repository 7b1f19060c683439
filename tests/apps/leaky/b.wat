;; b.wat ("b"): the leaky app's careless callee.  take (own) keeps the
;; map it is given; peek (borrow) returns without closing its borrowed
;; handle; stash (borrow) keeps the map past the call the right way, by
;; clone, and closes the borrow, but never closes the clone.
(module
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "clone" (func $clone (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $kept (mut i32) (i32.const 0))
  (global $stashed (mut i32) (i32.const 0))
  (func (export "take") (param $h i32) (result i32)
    (global.set $kept (local.get $h))
    (i32.const 0))
  (func (export "peek") (param $h i32) (result i32)
    (i32.const 0))
  (func (export "stash") (param $h i32) (result i32)
    (if (call $clone (local.get $h) (i32.const 1) (i32.const 0)) (then unreachable))
    (global.set $stashed (i32.load (i32.const 0)))
    (call $close (local.get $h)))
)
