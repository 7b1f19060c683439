;; abi_loop.wat: the guest every ABI benchmark host runs.
;;
;; `setup` makes a map and stores one entry; `get_loop n` and `set_loop n`
;; then call the host n times from inside the guest, so one export call
;; (and its fixed cost from Python) is spread over n operations.  Each loop
;; returns how many calls did not return OK: a benchmark checks it is 0.
;;
;; Memory layout:   0 handle   4 out_len   16 key (16 bytes)
;;                 64 value (64 bytes)   128 get buffer (64 bytes)
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "bench-key-000001")
  (data (i32.const 64) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

  (func (export "setup") (result i32)
    (local $err i32)
    (local.set $err (call $new (i32.const 0)))
    (if (local.get $err) (then (return (local.get $err))))
    (call $set (i32.load (i32.const 0))
               (i32.const 16) (i32.const 16) (i32.const 64) (i32.const 64)))

  (func (export "get_loop") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (local.set $h (i32.load (i32.const 0)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0)
            (call $get (local.get $h) (i32.const 16) (i32.const 16)
                       (i32.const 128) (i32.const 64) (i32.const 4)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  (func (export "set_loop") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (local.set $h (i32.load (i32.const 0)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0)
            (call $set (local.get $h) (i32.const 16) (i32.const 16)
                       (i32.const 64) (i32.const 64)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  ;; 1 when the last `get` left the whole 64-byte value in the buffer.
  (func (export "value_ok") (result i32)
    (i32.and
      (i32.eq (i32.load (i32.const 4)) (i32.const 64))
      (i32.and
        (i64.eq (i64.load (i32.const 128)) (i64.load (i32.const 64)))
        (i64.eq (i64.load (i32.const 184)) (i64.load (i32.const 120))))))
)
