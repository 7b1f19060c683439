;; xmod_callee.wat: module B of the cross-module benchmark (bench_xmod.py).
;;
;; Four exports that module A (xmod_caller.wat) imports as `callee.*`.  The
;; benchmark declares their handle kinds when it loads this module:
;;   take      params ["own"], results ["own"]: the handle moves in, and moves
;;             back out (returns the handle it was given)
;;   peek      params ["borrow"]: does nothing, returns 0; the broker ends the
;;             borrow (closes the borrowed handle) when it returns
;;   peek_len  params ["borrow"]: one `wasi_map.len` on the borrowed handle,
;;             returns its errno (0 = OK)
;;   plain     no handles: returns its i32 argument
(module
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  (memory (export "memory") 1)

  (func (export "take") (param $h i32) (result i32)
    (local.get $h))

  (func (export "peek") (param $h i32) (result i32)
    (i32.const 0))

  (func (export "peek_len") (param $h i32) (result i32)
    (call $len (local.get $h) (i32.const 0)))

  (func (export "plain") (param $x i32) (result i32)
    (local.get $x))
)
