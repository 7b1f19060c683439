;; gc_churn.wat: a guest that makes cycles of maps, for the cycle collector
;; tests (tests/gc/test_gc.py), loaded as "churn".  It builds rings and
;; self-references with set_map, keeps or drops its handles to them, makes
;; garbage cycles by the hundred (each close of a referenced map counts
;; toward the automatic collector's threshold), and logs its drop notices.
;; `churn` is what a test lends a map to (declared borrow) while collections
;; run; `boom_back` calls back into "relay" (gc_relay.wat), which traps.
;; Keys and values are single bytes; results are a value >= 0, or -errno
;; (or a negative step code where the comment says so).
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "delete" (func $delete (param i32 i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "get_map" (func $get_map (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "watch_drop" (func $watch (param i32 i64) (result i32)))
  (import "relay" "boom" (func $boom (result i32)))

  ;; 0x00 out handle, 0x10 key byte, 0x11 value byte, 0x20 get buffer
  ;; (16 bytes), 0x30 out_len, 0x1000.. the drop-notice log (8 bytes each)
  (memory (export "memory") 4)
  (global $logged (mut i32) (i32.const 0))

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

  (func $read (param $h i32) (param $k i32) (result i32)
    (local $err i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (local.set $err (call $get (local.get $h) (i32.const 0x10) (i32.const 1)
                               (i32.const 0x20) (i32.const 16) (i32.const 0x30)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load8_u (i32.const 0x20)))

  ;; link(parent, k, child): parent[k] = a reference to child's map
  (func $link (param $parent i32) (param $k i32) (param $child i32) (result i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (call $set_map (local.get $parent) (i32.const 0x10) (i32.const 1) (local.get $child)))

  ;; follow(h, k) -> a new owning handle to the map h[k] references
  (func $follow (param $h i32) (param $k i32) (result i32)
    (local $err i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (local.set $err (call $get_map (local.get $h) (i32.const 0x10) (i32.const 1) (i32.const 0)))
    (if (local.get $err) (then (return (call $fail (local.get $err)))))
    (i32.load (i32.const 0)))

  ;; --- plain helpers (handle numbers are this module's) --------------------
  (func (export "new") (result i32) (call $new_map))
  (func (export "close") (param $h i32) (result i32) (call $close (local.get $h)))
  (func (export "write") (param $h i32) (param $k i32) (param $v i32) (result i32)
    (call $write (local.get $h) (local.get $k) (local.get $v)))
  (func (export "read") (param $h i32) (param $k i32) (result i32)
    (call $read (local.get $h) (local.get $k)))
  (func (export "link") (param $parent i32) (param $k i32) (param $child i32) (result i32)
    (call $link (local.get $parent) (local.get $k) (local.get $child)))
  (func (export "unlink") (param $h i32) (param $k i32) (result i32)
    (i32.store8 (i32.const 0x10) (local.get $k))
    (call $delete (local.get $h) (i32.const 0x10) (i32.const 1)))
  (func (export "follow") (param $h i32) (param $k i32) (result i32)
    (call $follow (local.get $h) (local.get $k)))
  (func (export "watch") (param $h i32) (param $cookie i64) (result i32)
    (call $watch (local.get $h) (local.get $cookie)))
  ;; adopt(h) -> h: how the host hands this module a map (declared share)
  (func (export "adopt") (param $h i32) (result i32) (local.get $h))
  (func (export "trap") unreachable)

  ;; --- drop notices ----------------------------------------------------------
  (func (export "wasi_map_on_drop") (param $cookie i64)
    (i64.store (i32.add (i32.const 0x1000) (i32.mul (global.get $logged) (i32.const 8)))
               (local.get $cookie))
    (global.set $logged (i32.add (global.get $logged) (i32.const 1))))
  (func (export "log_len") (result i32) (global.get $logged))
  (func (export "log_at") (param $i i32) (result i64)
    (i64.load (i32.add (i32.const 0x1000) (i32.mul (local.get $i) (i32.const 8)))))

  ;; --- cycles ------------------------------------------------------------------
  ;; ring(n, keep) -> a ring of n >= 1 maps, map i = {1: -> map i+1 (the
  ;; last -> the first), 2: i & 0xff}; with keep != 0 the handle to map 0
  ;; (the only one kept), else 0 (the ring is garbage).  -1 on any error.
  (func (export "ring") (param $n i32) (param $keep i32) (result i32)
    (local $first i32) (local $prev i32) (local $next i32) (local $i i32)
    (local.set $first (call $new_map))
    (if (i32.lt_s (local.get $first) (i32.const 0)) (then (return (i32.const -1))))
    (if (call $write (local.get $first) (i32.const 2) (i32.const 0)) (then (return (i32.const -1))))
    (local.set $prev (local.get $first))
    (local.set $i (i32.const 1))
    (block $done
      (loop $more
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $next (call $new_map))
        (if (i32.lt_s (local.get $next) (i32.const 0)) (then (return (i32.const -1))))
        (if (call $write (local.get $next) (i32.const 2) (local.get $i))
          (then (return (i32.const -1))))
        (if (call $link (local.get $prev) (i32.const 1) (local.get $next))
          (then (return (i32.const -1))))
        (if (i32.ne (local.get $prev) (local.get $first))
          (then (if (call $close (local.get $prev)) (then (return (i32.const -1))))))
        (local.set $prev (local.get $next))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more)))
    (if (call $link (local.get $prev) (i32.const 1) (local.get $first))
      (then (return (i32.const -1))))
    (if (i32.ne (local.get $prev) (local.get $first))
      (then (if (call $close (local.get $prev)) (then (return (i32.const -1))))))
    (if (local.get $keep) (then (return (local.get $first))))
    (if (call $close (local.get $first)) (then (return (i32.const -1))))
    (i32.const 0))

  ;; garbage(n) -> 0: n garbage pairs a <-> b (a[1] -> b, b[1] -> a), both
  ;; handles closed: two releases of a referenced map each.  -1 on any error.
  (func $garbage (param $n i32) (result i32)
    (local $a i32) (local $b i32)
    (block $done
      (loop $more
        (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
        (local.set $a (call $new_map))
        (local.set $b (call $new_map))
        (if (i32.or (i32.lt_s (local.get $a) (i32.const 0)) (i32.lt_s (local.get $b) (i32.const 0)))
          (then (return (i32.const -1))))
        (if (call $link (local.get $a) (i32.const 1) (local.get $b)) (then (return (i32.const -1))))
        (if (call $link (local.get $b) (i32.const 1) (local.get $a)) (then (return (i32.const -1))))
        (if (call $close (local.get $a)) (then (return (i32.const -1))))
        (if (call $close (local.get $b)) (then (return (i32.const -1))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $more)))
    (i32.const 0))
  (func (export "garbage") (param $n i32) (result i32) (call $garbage (local.get $n)))

  ;; garbage_watched(n, cookie) -> the log's length at the end of this call:
  ;; n garbage self-references (m[1] -> m), map i watched with cookie + i.
  ;; -1 on any error.
  (func (export "garbage_watched") (param $n i32) (param $cookie i64) (result i32)
    (local $m i32) (local $i i32)
    (block $done
      (loop $more
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $m (call $new_map))
        (if (i32.lt_s (local.get $m) (i32.const 0)) (then (return (i32.const -1))))
        (if (call $link (local.get $m) (i32.const 1) (local.get $m)) (then (return (i32.const -1))))
        (if (call $watch (local.get $m) (i64.add (local.get $cookie) (i64.extend_i32_u (local.get $i))))
          (then (return (i32.const -1))))
        (if (call $close (local.get $m)) (then (return (i32.const -1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more)))
    (global.get $logged))

  ;; churn(h, n) -> h[1] | child[1] << 8, where child is the map h[2]
  ;; references: makes n garbage pairs first (so the collector runs while h
  ;; is lent), then reads through h and ends the borrow (closes h).  -1
  ;; when garbage fails, -2 when h[1] cannot be read, -3 when h[2] cannot be
  ;; followed, -4 when the child cannot be read, -5 when the child's handle
  ;; cannot be closed, -6 when h cannot be closed.
  (func (export "churn") (param $h i32) (param $n i32) (result i32)
    (local $v i32) (local $child i32) (local $w i32)
    (if (call $garbage (local.get $n)) (then (return (i32.const -1))))
    (local.set $v (call $read (local.get $h) (i32.const 1)))
    (if (i32.lt_s (local.get $v) (i32.const 0)) (then (return (i32.const -2))))
    (local.set $child (call $follow (local.get $h) (i32.const 2)))
    (if (i32.lt_s (local.get $child) (i32.const 0)) (then (return (i32.const -3))))
    (local.set $w (call $read (local.get $child) (i32.const 1)))
    (if (i32.lt_s (local.get $w) (i32.const 0)) (then (return (i32.const -4))))
    (if (call $close (local.get $child)) (then (return (i32.const -5))))
    (if (call $close (local.get $h)) (then (return (i32.const -6))))
    (i32.or (local.get $v) (i32.shl (local.get $w) (i32.const 8))))

  ;; boom_back(h) -> (traps): calls relay.boom, which traps in "relay"
  ;; while h (lent by relay) is borrowed here
  (func (export "boom_back") (param $h i32) (result i32) (call $boom))
)
