;; gc_relay.wat: a lender for the cycle collector tests (tests/gc/test_gc.py),
;; loaded as "relay" beside gc_churn.wat ("churn").  It builds a two-map
;; cycle that only its own handle reaches, and lends a handle to
;; churn.churn (declared borrow by the test), which makes the collector run
;; during the call; `lend_boom` lends it to churn.boom_back, which calls
;; back `boom`, so the trap begins here while the handle is lent.  Keys
;; and values are single bytes; results are a value >= 0, or -errno.
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "get_map" (func $get_map (param i32 i32 i32 i32) (result i32)))
  (import "churn" "churn" (func $churn (param i32 i32) (result i32)))
  (import "churn" "boom_back" (func $boom_back (param i32) (result i32)))

  ;; 0x00 out handle, 0x10 key byte, 0x11 value byte, 0x20 get buffer
  ;; (16 bytes), 0x30 out_len
  (memory (export "memory") 1)

  (func $fail (param $err i32) (result i32)
    (i32.sub (i32.const 0) (local.get $err)))

  (func $new_map (result i32)
    (local $err i32)
    (local.set $err (call $new (i32.const 0)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load (i32.const 0)))

  (func $write (param $h i32) (param $k i32) (param $v i32) (result i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (i32.store8 (i32.const 0x11) (local.get $v))
    (call $set (local.get $h) (i32.const 0x10) (i32.const 1) (i32.const 0x11) (i32.const 1)))

  (func $link (param $parent i32) (param $k i32) (param $child i32) (result i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (call $set_map (local.get $parent) (i32.const 0x10) (i32.const 1) (local.get $child)))

  ;; make_pair() -> the handle to a, where a = {1: 11, 2: -> b} and
  ;; b = {1: 22, 2: -> a}; the handle to b is closed.  -1 on any error.
  (func (export "make_pair") (result i32)
    (local $a i32) (local $b i32)
    (local.set $a (call $new_map))
    (local.set $b (call $new_map))
    (if (i32.or (i32.lt_s (local.get $a) (i32.const 0)) (i32.lt_s (local.get $b) (i32.const 0)))
      (then (return (i32.const -1))))
    (if (call $write (local.get $a) (i32.const 1) (i32.const 11)) (then (return (i32.const -1))))
    (if (call $write (local.get $b) (i32.const 1) (i32.const 22)) (then (return (i32.const -1))))
    (if (call $link (local.get $a) (i32.const 2) (local.get $b)) (then (return (i32.const -1))))
    (if (call $link (local.get $b) (i32.const 2) (local.get $a)) (then (return (i32.const -1))))
    (if (call $close (local.get $b)) (then (return (i32.const -1))))
    (local.get $a))

  ;; lend(h, n) -> what churn.churn(h, n) returns
  (func (export "lend") (param $h i32) (param $n i32) (result i32)
    (call $churn (local.get $h) (local.get $n)))

  ;; lend_boom(h) -> (traps): lends h to churn.boom_back, which calls boom
  (func (export "lend_boom") (param $h i32) (result i32)
    (call $boom_back (local.get $h)))
  (func (export "boom") (result i32) unreachable)

  (func (export "close") (param $h i32) (result i32) (call $close (local.get $h)))
  (func (export "read") (param $h i32) (param $k i32) (result i32)
    (local $err i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (local.set $err (call $get (local.get $h) (i32.const 0x10) (i32.const 1)
                               (i32.const 0x20) (i32.const 16) (i32.const 0x30)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load8_u (i32.const 0x20)))
  (func (export "follow") (param $h i32) (param $k i32) (result i32)
    (local $err i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (local.set $err (call $get_map (local.get $h) (i32.const 0x10) (i32.const 1) (i32.const 0)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load (i32.const 0)))
)
