;; xmod_watcher.wat: a module that takes drop notices.  Every
;; wasi_map_on_drop(cookie) is appended to a log (log_len, log_at); a
;; negative cookie makes on_drop trap after logging it.  `watch_close` shows
;; that no notice arrives during the call that caused it.  Results are a
;; value >= 0, or -errno.
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "watch_drop" (func $watch (param i32 i64) (result i32)))

  ;; 0x00 out handle, 0x10 key byte, 0x100.. the log (8 bytes a notice)
  (memory (export "memory") 1)
  (global $logged (mut i32) (i32.const 0))

  (func (export "wasi_map_on_drop") (param $cookie i64)
    (i64.store (i32.add (i32.const 0x100) (i32.mul (global.get $logged) (i32.const 8)))
               (local.get $cookie))
    (global.set $logged (i32.add (global.get $logged) (i32.const 1)))
    (if (i64.lt_s (local.get $cookie) (i64.const 0)) (then unreachable)))

  (func (export "log_len") (result i32) (global.get $logged))
  (func (export "log_at") (param $i i32) (result i64)
    (i64.load (i32.add (i32.const 0x100) (i32.mul (local.get $i) (i32.const 8)))))

  (func (export "new") (result i32)
    (local $err i32)
    (local.set $err (call $new (i32.const 0)))
    (if (local.get $err) (then (return (i32.sub (i32.const 0) (local.get $err)))))
    (i32.load (i32.const 0)))
  (func (export "close") (param $h i32) (result i32)
    (call $close (local.get $h)))
  (func (export "watch") (param $h i32) (param $cookie i64) (result i32)
    (call $watch (local.get $h) (local.get $cookie)))
  ;; link(parent, child): parent[1] = a reference to child's map
  (func (export "link") (param $parent i32) (param $child i32) (result i32)
    (i32.store8 (i32.const 0x10) (i32.const 1))
    (call $set_map (local.get $parent) (i32.const 0x10) (i32.const 1) (local.get $child)))
  ;; adopt(h) -> h: how the host hands this module a map (declared share)
  (func (export "adopt") (param $h i32) (result i32) (local.get $h))
  ;; watch_close(cookie) -> the log's length right after a new map was
  ;; watched and closed (its reclaim), still inside this call; -1 on error
  (func (export "watch_close") (param $cookie i64) (result i32)
    (local $h i32)
    (if (call $new (i32.const 0)) (then (return (i32.const -1))))
    (local.set $h (i32.load (i32.const 0)))
    (if (call $watch (local.get $h) (local.get $cookie)) (then (return (i32.const -1))))
    (if (call $close (local.get $h)) (then (return (i32.const -1))))
    (global.get $logged))
)
