;; xmod_callee.wat: the receiving side of cross-module calls, loaded as
;; "callee".  Each test declares how its exports' parameters and results
;; pass (own, borrow, share, ":r"), so one body serves every kind.  The
;; partner is xmod_caller.wat ("caller"), which it calls back through
;; `reenter` and `adopt`.  Keys and values are single bytes; results are a
;; value >= 0, or -errno.
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "clone" (func $clone (param i32 i32 i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (import "caller" "reenter" (func $reenter (result i32)))
  (import "caller" "adopt" (func $adopt (param i32) (result i32)))

  ;; 0x00 out handle, 0x10 key byte, 0x11 value byte, 0x20 get buffer
  ;; (16 bytes), 0x30 out_len / out_u32
  (memory (export "memory") 1)

  (func $fail (param $err i32) (result i32)
    (i32.sub (i32.const 0) (local.get $err)))

  (func $write (param $h i32) (param $k i32) (param $v i32) (result i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (i32.store8 (i32.const 0x11) (local.get $v))
    (call $set (local.get $h) (i32.const 0x10) (i32.const 1) (i32.const 0x11) (i32.const 1)))

  (func $read (param $h i32) (param $k i32) (result i32)
    (local $err i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (local.set $err (call $get (local.get $h) (i32.const 0x10) (i32.const 1)
                               (i32.const 0x20) (i32.const 16) (i32.const 0x30)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load8_u (i32.const 0x20)))

  (func $new_map (result i32)
    (local $err i32)
    (local.set $err (call $new (i32.const 0)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load (i32.const 0)))

  ;; link(parent, k, child): parent[k] = a reference to child's map
  (func $link (param $parent i32) (param $k i32) (param $child i32) (result i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (call $set_map (local.get $parent) (i32.const 0x10) (i32.const 1) (local.get $child)))

  ;; --- receiving a handle: the test declares the kind -------------------
  ;; keep(h) / take(h) -> h: hold on to the handle (two exports, so one
  ;; test can declare two kinds)
  (func (export "keep") (param $h i32) (result i32) (local.get $h))
  (func (export "take") (param $h i32) (result i32) (local.get $h))
  ;; pair(a, b) -> 0
  (func (export "pair") (param $a i32) (param $b i32) (result i32) (i32.const 0))
  ;; poke(h) -> errno of h[9] = 9 written during the call
  (func (export "poke") (param $h i32) (result i32)
    (call $write (local.get $h) (i32.const 9) (i32.const 9)))
  ;; end_borrow(h) -> errno of closing h during the call
  (func (export "end_borrow") (param $h i32) (result i32)
    (call $close (local.get $h)))
  ;; keep_clone(h, rights) -> a clone of h (kept past the call), or -errno
  (func (export "keep_clone") (param $h i32) (param $rights i32) (result i32)
    (local $err i32)
    (local.set $err (call $clone (local.get $h) (local.get $rights) (i32.const 0)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load (i32.const 0)))
  ;; share_on(h) -> what caller.adopt(h) returns
  (func (export "share_on") (param $h i32) (result i32)
    (call $adopt (local.get $h)))
  ;; call_back(h) -> what caller.reenter() returns: re-enters the lender
  (func (export "call_back") (param $h i32) (result i32)
    (call $reenter))
  ;; wait(h) -> spins reading h: sets h[1] = 1, then polls until h[2]
  ;; exists; -> the number of polls, or -1 after 100 million of them.
  ;; Lets a test act from another thread while a borrow is in progress.
  (func (export "wait") (param $h i32) (result i32)
    (local $i i32)
    (drop (call $write (local.get $h) (i32.const 1) (i32.const 1)))
    (loop $spin
      (if (i32.ge_s (call $read (local.get $h) (i32.const 2)) (i32.const 0))
        (then (return (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spin (i32.lt_u (local.get $i) (i32.const 100000000))))
    (i32.const -1))
  ;; trap(h): unreachable
  (func (export "trap") (param $h i32) unreachable)

  ;; build(h) -> 0 or -step: maps only this module reaches (a chain
  ;; a -> b -> c under key 1), and a map d = {1: 2} it stores in h under
  ;; key 100 (keeping its own handle to d too); also h[3] = 4.
  (func (export "build") (param $h i32) (result i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32)
    (local.set $a (call $new_map))
    (local.set $b (call $new_map))
    (local.set $c (call $new_map))
    (local.set $d (call $new_map))
    (if (call $link (local.get $a) (i32.const 1) (local.get $b)) (then (return (i32.const -1))))
    (if (call $link (local.get $b) (i32.const 1) (local.get $c)) (then (return (i32.const -2))))
    (if (call $close (local.get $b)) (then (return (i32.const -3))))
    (if (call $close (local.get $c)) (then (return (i32.const -4))))
    (if (call $write (local.get $d) (i32.const 1) (i32.const 2)) (then (return (i32.const -5))))
    (if (call $link (local.get $h) (i32.const 100) (local.get $d)) (then (return (i32.const -6))))
    (if (call $write (local.get $h) (i32.const 3) (i32.const 4)) (then (return (i32.const -7))))
    (i32.const 0))

  ;; --- giving a handle back: the test declares the result's kind ---------
  ;; give() -> a new map {1: 7}
  (func (export "give") (result i32)
    (local $m i32)
    (local.set $m (call $new_map))
    (drop (call $write (local.get $m) (i32.const 1) (i32.const 7)))
    (local.get $m))
  ;; give_back(h) -> h
  (func (export "give_back") (param $h i32) (result i32) (local.get $h))
  ;; give_bad() -> a number never issued to this module
  (func (export "give_bad") (result i32) (i32.const 0x7fff))

  ;; --- the callee's own view of its handles (plain parameters) -----------
  (func (export "new") (result i32) (call $new_map))
  (func (export "read") (param $h i32) (param $k i32) (result i32)
    (call $read (local.get $h) (local.get $k)))
  (func (export "write") (param $h i32) (param $k i32) (param $v i32) (result i32)
    (call $write (local.get $h) (local.get $k) (local.get $v)))
  (func (export "count") (param $h i32) (result i32)
    (local $err i32)
    (local.set $err (call $len (local.get $h) (i32.const 0x30)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load (i32.const 0x30)))
  (func (export "close") (param $h i32) (result i32)
    (call $close (local.get $h)))
)
