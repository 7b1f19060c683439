;; gc_bench.wat: the guest of bench_gc.py.  Each export loops n times
;; *inside the guest*, so building a million maps costs a million host calls
;; and no Python; each returns how many host calls did not return OK (the
;; benchmark checks it is 0).
;;
;;   make_pairs n      n garbage 2-cycles: new a, new b, a["k"] = b,
;;                     b["k"] = a (set_map), close a, close b.  Nothing but
;;                     the cycle keeps the 2n maps alive: the collector's work
;;   new_loop n        n new maps, every handle kept open (for unload)
;;   clone_loop n      one new map and n clones of its handle, all kept open
;;                     (n + 1 handles to one map, for unload)
;;   new_close_loop n  new, then close, n times: a hot path with tracer event
;;                     sites (new, close, reclaim)
;;
;; Memory layout:   0 handle a   4 handle b   16 key "k"
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "clone" (func $clone (param i32 i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "k")

  (func (export "make_pairs") (param $n i32) (result i32)
    (local $a i32) (local $b i32) (local $bad i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0) (call $new (i32.const 0)))))
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0) (call $new (i32.const 4)))))
        (local.set $a (i32.load (i32.const 0)))
        (local.set $b (i32.load (i32.const 4)))
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0)
            (call $set_map (local.get $a) (i32.const 16) (i32.const 1) (local.get $b)))))
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0)
            (call $set_map (local.get $b) (i32.const 16) (i32.const 1) (local.get $a)))))
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0) (call $close (local.get $a)))))
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0) (call $close (local.get $b)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  (func (export "new_loop") (param $n i32) (result i32)
    (local $bad i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0) (call $new (i32.const 0)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  (func (export "clone_loop") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (if (call $new (i32.const 0)) (then (return (i32.add (local.get $n) (i32.const 1)))))
    (local.set $h (i32.load (i32.const 0)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0) (call $clone (local.get $h) (i32.const 3) (i32.const 4)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  (func (export "new_close_loop") (param $n i32) (result i32)
    (local $bad i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0) (call $new (i32.const 0)))))
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0) (call $close (i32.load (i32.const 0))))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))
)
