;; parallel_model.wat: loops of map operations for tests/host/test_parallel_model.py,
;; which runs them from several threads at once, each thread in a module of
;; its own, all granted the named map "shared" read-write.
;;
;; Each export returns how many operations answered other than the model
;; says (0 when all is well); a failed `new` or `open` returns 1000 at once.
;;   hits n      `incr` by 1 of "hits" in "shared", n times (the test adds
;;               them up: no update may be lost).
;;   own n tag   in a private map: n times, set "own" to the 8 bytes
;;               (i xor tag), read them back, check the version rose (one
;;               clock per map: a write takes a version above the last);
;;               every 7th time delete it and check it is gone.
;;   refs n tag  n times: a new map stored in "shared" under "ref"+tag
;;               (set_map), closed, then written over with bytes by `set`
;;               (which must drop the reference: the broker lock's path),
;;               then `set_if` with the version just read, then `delete`.
;;
;; Memory:  0 private h   4 shared h   8 out_len   12 child h   16 out (8)
;;         24 version (8)   32 value (8)   40 get buffer (16)
;;         64 "shared"   80 "hits"   96 "own"   112 "ref" + tag byte
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set_if" (func $set_if (param i32 i32 i32 i32 i32 i64) (result i32)))
  (import "wasi_map" "delete" (func $delete (param i32 i32 i32) (result i32)))
  (import "wasi_map" "exists" (func $exists (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "version" (func $version (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "incr" (func $incr (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "shared")
  (data (i32.const 80) "hits")
  (data (i32.const 96) "own")
  (data (i32.const 112) "ref")

  (global $have_private (mut i32) (i32.const 0))
  (global $have_shared (mut i32) (i32.const 0))

  (func $shared (result i32)
    (if (i32.eqz (global.get $have_shared))
      (then
        (if (call $open (i32.const 64) (i32.const 6) (i32.const 3) (i32.const 4))
          (then (return (i32.const 0))))
        (global.set $have_shared (i32.const 1))))
    (i32.load (i32.const 4)))

  (func $private (result i32)
    (if (i32.eqz (global.get $have_private))
      (then
        (if (call $new (i32.const 0)) (then (return (i32.const 0))))
        (global.set $have_private (i32.const 1))))
    (i32.load (i32.const 0)))

  ;; 1 when an errno is not OK
  (func $bad (param $err i32) (result i32) (i32.ne (local.get $err) (i32.const 0)))

  (func (export "hits") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (local.set $h (call $shared))
    (if (i32.eqz (local.get $h)) (then (return (i32.const 1000))))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $bad (i32.add (local.get $bad)
          (call $bad (call $incr (local.get $h) (i32.const 80) (i32.const 4)
                                 (i64.const 1) (i32.const 16)))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $bad))

  (func (export "own") (param $n i32) (param $tag i32) (result i32)
    (local $h i32) (local $bad i32) (local $i i32) (local $last i64)
    (local.set $h (call $private))
    (if (i32.eqz (local.get $h)) (then (return (i32.const 1000))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i64.store (i32.const 32) (i64.extend_i32_u (i32.xor (local.get $i) (local.get $tag))))
        (local.set $bad (i32.add (local.get $bad)
          (call $bad (call $set (local.get $h) (i32.const 96) (i32.const 3)
                                (i32.const 32) (i32.const 8)))))
        ;; read back: OK, 8 bytes, the value written
        (local.set $bad (i32.add (local.get $bad)
          (i32.or
            (call $bad (call $get (local.get $h) (i32.const 96) (i32.const 3)
                                  (i32.const 40) (i32.const 16) (i32.const 8)))
            (i32.or (i32.ne (i32.load (i32.const 8)) (i32.const 8))
                    (i64.ne (i64.load (i32.const 40)) (i64.load (i32.const 32)))))))
        ;; the version rose
        (local.set $bad (i32.add (local.get $bad)
          (call $bad (call $version (local.get $h) (i32.const 96) (i32.const 3) (i32.const 24)))))
        (local.set $bad (i32.add (local.get $bad)
          (i64.le_u (i64.load (i32.const 24)) (local.get $last))))
        (local.set $last (i64.load (i32.const 24)))
        ;; every 7th: delete, and it is gone
        (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 7)))
          (then
            (local.set $bad (i32.add (local.get $bad)
              (call $bad (call $delete (local.get $h) (i32.const 96) (i32.const 3)))))
            (local.set $bad (i32.add (local.get $bad)
              (i32.or
                (call $bad (call $exists (local.get $h) (i32.const 96) (i32.const 3) (i32.const 8)))
                (i32.ne (i32.load (i32.const 8)) (i32.const 0)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $bad))

  (func (export "refs") (param $n i32) (param $tag i32) (result i32)
    (local $h i32) (local $bad i32)
    (local.set $h (call $shared))
    (if (i32.eqz (local.get $h)) (then (return (i32.const 1000))))
    (i32.store8 (i32.const 115) (local.get $tag))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (if (call $new (i32.const 12)) (then (return (i32.const 1000))))
        (local.set $bad (i32.add (local.get $bad)
          (call $bad (call $set_map (local.get $h) (i32.const 112) (i32.const 4)
                                    (i32.load (i32.const 12))))))
        (local.set $bad (i32.add (local.get $bad)
          (call $bad (call $close (i32.load (i32.const 12))))))
        (i64.store (i32.const 32) (i64.extend_i32_u (local.get $n)))
        (local.set $bad (i32.add (local.get $bad)
          (call $bad (call $set (local.get $h) (i32.const 112) (i32.const 4)
                                (i32.const 32) (i32.const 8)))))
        (local.set $bad (i32.add (local.get $bad)
          (call $bad (call $version (local.get $h) (i32.const 112) (i32.const 4) (i32.const 24)))))
        (local.set $bad (i32.add (local.get $bad)
          (call $bad (call $set_if (local.get $h) (i32.const 112) (i32.const 4)
                                   (i32.const 32) (i32.const 8) (i64.load (i32.const 24))))))
        (local.set $bad (i32.add (local.get $bad)
          (call $bad (call $delete (local.get $h) (i32.const 112) (i32.const 4)))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $bad))
)
