;; parallel.wat: the guest bench_parallel.py loads as 1 and as 2 instances.
;;
;; Each instance has its own memory and globals, so the handles below are
;; per instance; each loop makes or opens its map on its first call in an
;; instance (a call from the host runs in whichever instance is free, so a
;; separate `setup` export could land twice in the same one).
;;
;; `private_loop n`: n times, `set` then `get` of a 16-byte key and a
;; 16-byte value in a map of this instance's own (made with `new`).
;; `shared_loop n`: n times, `incr` by 1 of the key "hits" in the named map
;; "counter", the same map in every instance (the module must be granted it
;; read-write).  Each returns how many calls were not OK (a `get` is not OK
;; either unless it wrote a length of 16; a failed `new` or `open` returns 1
;; at once): the benchmark checks it is 0.  `spin_loop n` is the reference:
;; n rounds of arithmetic and no host call (it returns 0), what an instance
;; runs when nothing but the machine limits it.
;;
;; Memory layout:   0 private handle   4 shared handle   8 get's out_len
;;                 16 incr's out_i64 (8 bytes)   32 key (16 bytes)
;;                 48 value (16 bytes)   64 get buffer (64 bytes)
;;                128 name "counter"   144 key "hits"   160 spin_loop's last x
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "incr" (func $incr (param i32 i32 i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "parallel-key-001")
  (data (i32.const 48) "0123456789abcdef")
  (data (i32.const 128) "counter")
  (data (i32.const 144) "hits")

  (global $have_private (mut i32) (i32.const 0))
  (global $have_shared (mut i32) (i32.const 0))

  (func (export "private_loop") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (if (i32.eqz (global.get $have_private))
      (then
        (if (call $new (i32.const 0)) (then (return (i32.const 1))))
        (global.set $have_private (i32.const 1))))
    (local.set $h (i32.load (i32.const 0)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0)
            (call $set (local.get $h) (i32.const 32) (i32.const 16)
                       (i32.const 48) (i32.const 16)))))
        ;; a get counts as bad unless OK with the whole 16-byte value
        (local.set $bad (i32.add (local.get $bad)
          (i32.or
            (i32.ne (i32.const 0)
              (call $get (local.get $h) (i32.const 32) (i32.const 16)
                         (i32.const 64) (i32.const 64) (i32.const 8)))
            (i32.ne (i32.load (i32.const 8)) (i32.const 16)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  (func (export "shared_loop") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (if (i32.eqz (global.get $have_shared))
      (then
        (if (call $open (i32.const 128) (i32.const 7) (i32.const 3) (i32.const 4))
          (then (return (i32.const 1))))
        (global.set $have_shared (i32.const 1))))
    (local.set $h (i32.load (i32.const 4)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0)
            (call $incr (local.get $h) (i32.const 144) (i32.const 4)
                        (i64.const 1) (i32.const 16)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  (func (export "spin_loop") (param $n i32) (result i32)
    (local $x i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1103515245))
                               (i32.const 12345)))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    ;; kept in memory, so the loop is not optimized away
    (i32.store (i32.const 160) (local.get $x))
    (i32.const 0))
)
