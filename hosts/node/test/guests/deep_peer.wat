;; deep_peer.wat: the callee of deep_ops.wat's op 4: take(own, borrow, share) keeps the own and
;; share handles (closing the last ones), reads through the borrow; takes() counts the takes;
;; trap_take traps at once.
(module
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $own (mut i32) (i32.const 0))
  (global $share (mut i32) (i32.const 0))
  (global $takes (mut i32) (i32.const 0))
  (func (export "takes") (result i32) (global.get $takes))
  (func (export "take") (param $own i32) (param $b i32) (param $s i32) (result i32)
    (drop (call $close (global.get $own)))
    (drop (call $close (global.get $share)))
    (global.set $own (local.get $own))
    (global.set $share (local.get $s))
    (global.set $takes (i32.add (global.get $takes) (i32.const 1)))
    (call $len (local.get $b) (i32.const 0)))
  (func (export "trap_take") (param $own i32) (param $b i32) (param $s i32) (result i32)
    unreachable)
)
