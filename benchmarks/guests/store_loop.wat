;; store_loop.wat: the guest bench_store.py runs against every store.
;;
;; `setup` opens the named map "bench" (the module must be granted it) and
;; writes the key list for get_many: keys "bench-key-000000" ..
;; "bench-key-000999" (16 bytes each).  `get_loop n`, `set_loop n` and
;; `get_many_loop n count` call the host n times from inside the guest, so
;; one export call (and its fixed cost from Python) is spread over n
;; operations.  Each loop returns how many calls did not return OK: the
;; benchmark checks it is 0.
;;
;; Memory layout:   0 handle   4 out_len / out_used   16 name "bench"
;;                 32 key "bench-key-single" (16 bytes)
;;                 64 value (100 bytes)   256 get buffer (128 bytes)
;;               1024 key list: 1,000 x (u32 16, 16 bytes) = 20,000 bytes
;;              32768 get_many buffer: 1,000 x (u32 100, 100 bytes) = 104,000 bytes
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "get_many"
    (func $get_many (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 3)
  (data (i32.const 16) "bench")
  (data (i32.const 32) "bench-key-single")
  (data (i32.const 64)
    "0123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdef0123456789abcdef"
    "WXYZ")

  (global $KEYS i32 (i32.const 1024))
  (global $MANY_BUF i32 (i32.const 32768))
  (global $MANY_CAP i32 (i32.const 104000))
  (global $KEY_RECORD i32 (i32.const 20))   ;; u32 length + 16 bytes
  (global $MAX_KEYS i32 (i32.const 1000))

  ;; Open "bench" read-write; write the key list.  The errno of `open`.
  (func (export "setup") (result i32)
    (local $i i32) (local $at i32) (local $d i32) (local $q i32)
    (local $err i32)
    (local.set $err (call $open (i32.const 16) (i32.const 5) (i32.const 3) (i32.const 0)))
    (if (local.get $err) (then (return (local.get $err))))
    (loop $key
      (local.set $at (i32.add (global.get $KEYS)
                              (i32.mul (local.get $i) (global.get $KEY_RECORD))))
      (i32.store (local.get $at) (i32.const 16))
      ;; "bench-key-" is the first 10 bytes of the single key at 32.
      (i64.store (i32.add (local.get $at) (i32.const 4)) (i64.load (i32.const 32)))
      (i32.store16 (i32.add (local.get $at) (i32.const 12)) (i32.load16_u (i32.const 40)))
      ;; six decimal digits of i, last digit first
      (local.set $q (local.get $i))
      (local.set $d (i32.const 5))
      (loop $digit
        (i32.store8 (i32.add (i32.add (local.get $at) (i32.const 14)) (local.get $d))
          (i32.add (i32.const 48) (i32.rem_u (local.get $q) (i32.const 10))))
        (local.set $q (i32.div_u (local.get $q) (i32.const 10)))
        (br_if $digit (i32.ge_s (local.tee $d (i32.sub (local.get $d) (i32.const 1)))
                                (i32.const 0))))
      (br_if $key (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                            (global.get $MAX_KEYS))))
    (i32.const 0))

  (func (export "get_loop") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (local.set $h (i32.load (i32.const 0)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0)
            (call $get (local.get $h) (i32.const 32) (i32.const 16)
                       (i32.const 256) (i32.const 128) (i32.const 4)))))
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
            (call $set (local.get $h) (i32.const 32) (i32.const 16)
                       (i32.const 64) (i32.const 100)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  ;; n calls of get_many over the first `count` keys of the key list.
  (func (export "get_many_loop") (param $n i32) (param $count i32) (result i32)
    (local $h i32) (local $bad i32) (local $keys_len i32)
    (local.set $h (i32.load (i32.const 0)))
    (local.set $keys_len (i32.mul (local.get $count) (global.get $KEY_RECORD)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (i32.ne (i32.const 0)
            (call $get_many (local.get $h) (global.get $KEYS) (local.get $keys_len)
                            (global.get $MANY_BUF) (global.get $MANY_CAP) (i32.const 4)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))

  ;; 1 when the last `get` left the whole 100-byte value in the buffer.
  (func (export "value_ok") (result i32)
    (i32.and
      (i32.eq (i32.load (i32.const 4)) (i32.const 100))
      (i32.and
        (i64.eq (i64.load (i32.const 256)) (i64.load (i32.const 64)))
        (i64.eq (i64.load (i32.const 348)) (i64.load (i32.const 156))))))

  ;; The last call's out_len / out_used.
  (func (export "out_len") (result i32) (i32.load (i32.const 4)))

  ;; Byte i of the get_many buffer (for the benchmark's check of one value).
  (func (export "many_byte") (param $i i32) (result i32)
    (i32.load8_u (i32.add (global.get $MANY_BUF) (local.get $i))))
)
