;; xmod_caller.wat: the calling side of cross-module calls, loaded as
;; "caller".  Its ABI helpers (new, read, write, count, ...) show a test
;; what the caller's own handles do; each via_* export passes its arguments
;; to the export of the same name in "callee" (xmod_callee.wat), whose
;; declarations the test chooses.  `reenter` is what the callee calls back
;; while it holds a handle lent by `via_call_back`.  Keys and values are
;; single bytes; results are a value >= 0, or -errno.
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "clone" (func $clone (param i32 i32 i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  (import "wasi_map" "watch_drop" (func $watch (param i32 i64) (result i32)))
  (import "callee" "keep" (func $keep (param i32) (result i32)))
  (import "callee" "take" (func $take (param i32) (result i32)))
  (import "callee" "pair" (func $pair (param i32 i32) (result i32)))
  (import "callee" "poke" (func $poke (param i32) (result i32)))
  (import "callee" "end_borrow" (func $end_borrow (param i32) (result i32)))
  (import "callee" "keep_clone" (func $keep_clone (param i32 i32) (result i32)))
  (import "callee" "share_on" (func $share_on (param i32) (result i32)))
  (import "callee" "call_back" (func $call_back (param i32) (result i32)))
  (import "callee" "trap" (func $trap (param i32)))
  (import "callee" "build" (func $build (param i32) (result i32)))
  (import "callee" "give" (func $give (result i32)))
  (import "callee" "give_back" (func $give_back (param i32) (result i32)))
  (import "callee" "give_bad" (func $give_bad (result i32)))

  ;; 0x00 out handle, 0x10 key byte, 0x11 value byte, 0x20 get buffer
  ;; (16 bytes), 0x30 out_len / out_u32, 0x100.. reenter's report
  (memory (export "memory") 1)
  (global $lent (mut i32) (i32.const 0))
  (global $mode (mut i32) (i32.const 0))

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

  ;; --- the caller's own handles ------------------------------------------
  (func (export "new") (result i32)
    (local $err i32)
    (local.set $err (call $new (i32.const 0)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load (i32.const 0)))
  (func (export "clone") (param $h i32) (param $rights i32) (result i32)
    (local $err i32)
    (local.set $err (call $clone (local.get $h) (local.get $rights) (i32.const 0)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load (i32.const 0)))
  (func (export "close") (param $h i32) (result i32)
    (call $close (local.get $h)))
  (func (export "read") (param $h i32) (param $k i32) (result i32)
    (call $read (local.get $h) (local.get $k)))
  (func (export "write") (param $h i32) (param $k i32) (param $v i32) (result i32)
    (call $write (local.get $h) (local.get $k) (local.get $v)))
  (func (export "count") (param $h i32) (result i32)
    (local $err i32)
    (local.set $err (call $len (local.get $h) (i32.const 0x30)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load (i32.const 0x30)))
  (func (export "watch") (param $h i32) (param $cookie i64) (result i32)
    (call $watch (local.get $h) (local.get $cookie)))
  (func (export "load32") (param $addr i32) (result i32)
    (i32.load (local.get $addr)))
  ;; adopt(h) -> h: how the host or the callee hands this module a map
  (func (export "adopt") (param $h i32) (result i32) (local.get $h))

  ;; --- calls into "callee" ------------------------------------------------
  (func (export "via_keep") (param $h i32) (result i32) (call $keep (local.get $h)))
  (func (export "via_take") (param $h i32) (result i32) (call $take (local.get $h)))
  (func (export "via_pair") (param $a i32) (param $b i32) (result i32)
    (call $pair (local.get $a) (local.get $b)))
  (func (export "via_poke") (param $h i32) (result i32) (call $poke (local.get $h)))
  (func (export "via_end_borrow") (param $h i32) (result i32)
    (call $end_borrow (local.get $h)))
  (func (export "via_keep_clone") (param $h i32) (param $rights i32) (result i32)
    (call $keep_clone (local.get $h) (local.get $rights)))
  (func (export "via_share_on") (param $h i32) (result i32) (call $share_on (local.get $h)))
  (func (export "via_trap") (param $h i32) (call $trap (local.get $h)))
  (func (export "via_build") (param $h i32) (result i32) (call $build (local.get $h)))
  (func (export "via_give") (result i32) (call $give))
  (func (export "via_give_back") (param $h i32) (result i32) (call $give_back (local.get $h)))
  (func (export "via_give_bad") (result i32) (call $give_bad))
  ;; via_call_back(h, mode): lend h to callee.call_back, which calls
  ;; reenter() back; `mode` says what reenter does with h
  (func (export "via_call_back") (param $h i32) (param $mode i32) (result i32)
    (global.set $lent (local.get $h))
    (global.set $mode (local.get $mode))
    (call $call_back (local.get $h)))

  ;; reenter(), while $lent is lent to the callee:
  ;;   mode 0: report the errnos of close($lent) at 0x100, of $lent[5] = 6
  ;;           at 0x104, and what reading $lent[5] gives at 0x108; -> 0
  ;;   mode 1: pass $lent to callee.take (the test declares it own)
  ;;   mode 2: pass $lent to callee.keep (the test declares its kind)
  (func (export "reenter") (result i32)
    (if (i32.eq (global.get $mode) (i32.const 1))
      (then (return (call $take (global.get $lent)))))
    (if (i32.eq (global.get $mode) (i32.const 2))
      (then (return (call $keep (global.get $lent)))))
    (i32.store (i32.const 0x100) (call $close (global.get $lent)))
    (i32.store (i32.const 0x104) (call $write (global.get $lent) (i32.const 5) (i32.const 6)))
    (i32.store (i32.const 0x108) (call $read (global.get $lent) (i32.const 5)))
    (i32.const 0))
)
