;; self_pass.wat: a module that passes handles to its own exports, loaded as
;; "selfpass" (tests/ownership/test_selfcalls.py).  It imports its own inner_*
;; exports, so the giver's and the receiver's handle tables are one table.
;;
;;   fill(n)          open n new maps (kept open): 0, or -errno
;;   new()            a new map's handle, or -errno
;;   len(h)           its length, or -errno
;;   close(h)         0, or -errno
;;   outer_own(h), outer_borrow(h), outer_share(h)
;;                    remember h as $given, pass it to inner_* through the
;;                    import; that export's answer
;;   inner_own(got), inner_borrow(got), inner_share(got)
;;                    (declared own / borrow / share) write "seen" through
;;                    `got` and answer 100 * errno of close($given) [borrow]
;;                    or of len($given) [own, share] + errno of the write;
;;                    `got` is kept in $got
;;   outer_give_own(h), outer_give_share(h)
;;                    remember h as $given, call give_own / give_share
;;                    (results declared own / share) through the import:
;;                    the handle that came back
;;   give_own(), give_share()
;;                    return $given
;;   got()            the last handle an inner_* export received
;;   remember(h)      $given = h (for a host call of give_*)
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "selfpass" "inner_own" (func $inner_own (param i32) (result i32)))
  (import "selfpass" "inner_borrow" (func $inner_borrow (param i32) (result i32)))
  (import "selfpass" "inner_share" (func $inner_share (param i32) (result i32)))
  (import "selfpass" "give_own" (func $give_own (result i32)))
  (import "selfpass" "give_share" (func $give_share (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "seen")
  (global $given (mut i32) (i32.const 0))
  (global $got (mut i32) (i32.const 0))

  (func $errno (param $e i32) (result i32) (i32.sub (i32.const 0) (local.get $e)))

  (func (export "fill") (param $n i32) (result i32)
    (local $e i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $e (call $new (i32.const 0)))
        (if (local.get $e) (then (return (call $errno (local.get $e)))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $more)))
    (i32.const 0))

  (func (export "new") (result i32)
    (local $e i32)
    (local.set $e (call $new (i32.const 0)))
    (if (local.get $e) (then (return (call $errno (local.get $e)))))
    (i32.load (i32.const 0)))

  (func (export "len") (param $h i32) (result i32)
    (local $e i32)
    (local.set $e (call $len (local.get $h) (i32.const 0)))
    (if (local.get $e) (then (return (call $errno (local.get $e)))))
    (i32.load (i32.const 0)))

  (func (export "close") (param $h i32) (result i32)
    (call $errno (call $close (local.get $h))))

  (func $write (param $h i32) (result i32)
    (call $set (local.get $h) (i32.const 64) (i32.const 4) (i32.const 64) (i32.const 4)))

  (func (export "outer_own") (param $h i32) (result i32)
    (global.set $given (local.get $h))
    (call $inner_own (local.get $h)))
  (func (export "outer_borrow") (param $h i32) (result i32)
    (global.set $given (local.get $h))
    (call $inner_borrow (local.get $h)))
  (func (export "outer_share") (param $h i32) (result i32)
    (global.set $given (local.get $h))
    (call $inner_share (local.get $h)))

  (func (export "inner_own") (param $got i32) (result i32)
    (global.set $got (local.get $got))
    (i32.add (i32.mul (call $len (global.get $given) (i32.const 8)) (i32.const 100))
             (call $write (local.get $got))))
  (func (export "inner_borrow") (param $got i32) (result i32)
    (global.set $got (local.get $got))
    (i32.add (i32.mul (call $close (global.get $given)) (i32.const 100))
             (call $write (local.get $got))))
  (func (export "inner_share") (param $got i32) (result i32)
    (global.set $got (local.get $got))
    (i32.add (i32.mul (call $len (global.get $given) (i32.const 8)) (i32.const 100))
             (call $write (local.get $got))))

  (func (export "outer_give_own") (param $h i32) (result i32)
    (global.set $given (local.get $h))
    (call $give_own))
  (func (export "outer_give_share") (param $h i32) (result i32)
    (global.set $given (local.get $h))
    (call $give_share))
  (func (export "give_own") (result i32) (global.get $given))
  (func (export "give_share") (result i32) (global.get $given))
  (func (export "got") (result i32) (global.get $got))
  (func (export "remember") (param $h i32) (global.set $given (local.get $h))))
