;; xmod_caller.wat: module A of the cross-module benchmark (bench_xmod.py).
;;
;; Imports module B's exports (xmod_callee.wat) as ordinary imports from
;; `callee`.  `setup` makes one map; each `*_loop n` export calls one import
;; n times *inside the guest* (so one export call from the host is spread
;; over n calls) and returns how many calls gave a wrong answer: the
;; benchmark checks it is 0.
;;
;;   own_loop     h = take(h), n times: the handle moves to B and back, so
;;                its number changes; at the end `len` must accept it
;;   borrow_loop  peek(h) must return 0
;;   len_loop     peek_len(h) must return 0 (B's `len` was OK)
;;   plain_loop   plain(i) must return i
;;   direct_loop  the same with $local, a function of this module: a plain
;;                wasm-to-wasm call, no host in between
;;
;; Memory layout:   0 map handle   4 len out
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  (import "callee" "take" (func $take (param i32) (result i32)))
  (import "callee" "peek" (func $peek (param i32) (result i32)))
  (import "callee" "peek_len" (func $peek_len (param i32) (result i32)))
  (import "callee" "plain" (func $plain (param i32) (result i32)))
  (memory (export "memory") 1)

  (func $local (param $x i32) (result i32)
    (local.get $x))

  (func (export "setup") (result i32)
    (call $new (i32.const 0)))

  (func (export "own_loop") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (local.set $h (i32.load (i32.const 0)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $h (call $take (local.get $h)))
        (local.set $bad (i32.add (local.get $bad) (i32.eqz (local.get $h))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (i32.store (i32.const 0) (local.get $h))
    (i32.add (local.get $bad)
      (i32.ne (i32.const 0) (call $len (local.get $h) (i32.const 4)))))

  (func (export "borrow_loop") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (local.set $h (i32.load (i32.const 0)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0) (call $peek (local.get $h)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  (func (export "len_loop") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (local.set $h (i32.load (i32.const 0)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0) (call $peek_len (local.get $h)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  (func (export "plain_loop") (param $n i32) (result i32)
    (local $bad i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (local.get $n) (call $plain (local.get $n)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  (func (export "direct_loop") (param $n i32) (result i32)
    (local $bad i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (local.get $n) (call $local (local.get $n)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))
)
