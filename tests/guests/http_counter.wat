;; http_counter.wat: a guest of `wasi-map serve`'s convention (docs/serving.md).
;; handle(req borrow) -> status.  By the request's path:
;;   /trap        traps (the server answers 500 and loads the module again)
;;   /slow        spins about half a second first, then counts as any path
;;   /echo        200: resp:body = req:body, resp:header:x-query = req:query,
;;                resp:header:x-test = req:header:x-test
;;   /bad-status  returns 99 (no HTTP status: the server answers 500)
;;   /bad-header  sets resp:header:content-length (the server's: 500)
;;   otherwise    200: the path's new count in the named map "hits", in decimal
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "incr" (func $incr (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (memory (export "memory") 2)
  ;; 0: a handle or a length out; 8: an i64 out; 256: the path (1024 bytes);
  ;; 2048..2100: digits; 4096: a value being copied (up to 60 KiB)
  (data (i32.const 1300) "req:path")
  (data (i32.const 1310) "resp:body")
  (data (i32.const 1320) "hits")
  (data (i32.const 1330) "/trap")
  (data (i32.const 1340) "/slow")
  (data (i32.const 1350) "/echo")
  (data (i32.const 1360) "/bad-status")
  (data (i32.const 1380) "/bad-header")
  (data (i32.const 1400) "req:body")
  (data (i32.const 1410) "req:query")
  (data (i32.const 1420) "resp:header:x-query")
  (data (i32.const 1440) "req:header:x-test")
  (data (i32.const 1460) "resp:header:x-test")
  (data (i32.const 1480) "resp:header:content-length")
  (data (i32.const 1510) "7")

  (func $is (param $p i32) (param $plen i32) (param $s i32) (param $slen i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $plen) (local.get $slen)) (then (return (i32.const 0))))
    (block $out
      (loop $next
        (br_if $out (i32.ge_u (local.get $i) (local.get $plen)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $s) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; req[to] = req[from] (absent: nothing)
  (func $copy (param $req i32) (param $from i32) (param $flen i32) (param $to i32) (param $tlen i32)
    (if (i32.eqz (call $get (local.get $req) (local.get $from) (local.get $flen)
                            (i32.const 4096) (i32.const 61440) (i32.const 0)))
      (then (drop (call $set (local.get $req) (local.get $to) (local.get $tlen)
                             (i32.const 4096) (i32.load (i32.const 0)))))))

  (func (export "handle") (param $req i32) (result i32)
    (local $len i32) (local $h i32) (local $n i64) (local $p i32) (local $i i64)
    (if (call $get (local.get $req) (i32.const 1300) (i32.const 8)
                   (i32.const 256) (i32.const 1024) (i32.const 0))
      (then (return (i32.const 414))))
    (local.set $len (i32.load (i32.const 0)))
    (if (call $is (i32.const 256) (local.get $len) (i32.const 1330) (i32.const 5))
      (then unreachable))
    (if (call $is (i32.const 256) (local.get $len) (i32.const 1360) (i32.const 11))
      (then (return (i32.const 99))))
    (if (call $is (i32.const 256) (local.get $len) (i32.const 1380) (i32.const 11))
      (then
        (drop (call $set (local.get $req) (i32.const 1480) (i32.const 26) (i32.const 1510) (i32.const 1)))
        (return (i32.const 200))))
    (if (call $is (i32.const 256) (local.get $len) (i32.const 1350) (i32.const 5))
      (then
        (call $copy (local.get $req) (i32.const 1400) (i32.const 8) (i32.const 1310) (i32.const 9))
        (call $copy (local.get $req) (i32.const 1410) (i32.const 9) (i32.const 1420) (i32.const 19))
        (call $copy (local.get $req) (i32.const 1440) (i32.const 17) (i32.const 1460) (i32.const 18))
        (return (i32.const 200))))
    (if (call $is (i32.const 256) (local.get $len) (i32.const 1340) (i32.const 5))
      (then
        (loop $spin
          (local.set $i (i64.add (local.get $i) (i64.const 1)))
          (br_if $spin (i64.lt_u (local.get $i) (i64.const 500000000))))))
    ;; count the path
    (if (call $open (i32.const 1320) (i32.const 4) (i32.const 3) (i32.const 0)) (then unreachable))
    (local.set $h (i32.load (i32.const 0)))
    (if (call $incr (local.get $h) (i32.const 256) (local.get $len) (i64.const 1) (i32.const 8))
      (then unreachable))
    (drop (call $close (local.get $h)))
    ;; its decimal digits, backwards from 2100
    (local.set $n (i64.load (i32.const 8)))
    (local.set $p (i32.const 2100))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $n) (i64.const 10)))))
      (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $n) (i64.const 0))))
    (drop (call $set (local.get $req) (i32.const 1310) (i32.const 9)
                     (local.get $p) (i32.sub (i32.const 2100) (local.get $p))))
    (i32.const 200)))
