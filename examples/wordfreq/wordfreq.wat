;; wordfreq: count the words of a text into the named map "freq" (incr per
;; word), then page through the map with keys + get_many to find the number
;; of distinct words and the highest count.  main() -> (distinct, total, max).
;; Any errno other than OK traps, so a failure is loud (exit 1 from the CLI).
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "incr" (func $incr (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_map" "keys" (func $keys (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "get_many" (func $get_many (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)

  ;; Layout: 16 the map name; 64 cursor (u64); 72 out_used; 76 out_count;
  ;; 80 out_h; 88 out_i64; 1024 a page of keys (256 bytes, so several pages);
  ;; 2048 get_many's answer; 4096 the text.
  (data (i32.const 16) "freq")
  (data (i32.const 4096) "It was the best of times, it was the worst of times, it was the age of wisdom,\0ait was the age of foolishness, it was the epoch of belief, it was the epoch of\0aincredulity, it was the season of Light, it was the season of Darkness, it was\0athe spring of hope, it was the winter of despair, we had everything before us,\0awe had nothing before us, we were all going direct to Heaven, we were all going\0adirect the other way.\0a")
  (global $text_len i32 (i32.const 418))

  (func $ok (param $err i32)
    (if (local.get $err) (then unreachable)))

  (func $is_letter (param $c i32) (result i32)
    (i32.lt_u (i32.sub (i32.or (local.get $c) (i32.const 0x20)) (i32.const 97)) (i32.const 26)))

  ;; Count every word (a run of ASCII letters, lower-cased) with incr.
  (func $count_words (param $h i32) (result i32)
    (local $i i32) (local $end i32) (local $start i32) (local $c i32) (local $total i32)
    (local.set $i (i32.const 4096))
    (local.set $end (i32.add (i32.const 4096) (global.get $text_len)))
    (local.set $start (i32.const -1))
    (block $done (loop $scan
      (local.set $c (i32.const 0))
      (if (i32.lt_u (local.get $i) (local.get $end))
        (then (local.set $c (i32.load8_u (local.get $i)))))
      (if (call $is_letter (local.get $c))
        (then
          (i32.store8 (local.get $i) (i32.or (local.get $c) (i32.const 0x20)))
          (if (i32.eq (local.get $start) (i32.const -1))
            (then (local.set $start (local.get $i)))))
        (else
          (if (i32.ne (local.get $start) (i32.const -1))
            (then
              (call $ok (call $incr (local.get $h) (local.get $start)
                                    (i32.sub (local.get $i) (local.get $start))
                                    (i64.const 1) (i32.const 88)))
              (local.set $total (i32.add (local.get $total) (i32.const 1)))
              (local.set $start (i32.const -1))))))
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $scan)))
    (local.get $total))

  (func (export "main") (result i32 i32 i32)
    (local $h i32) (local $total i32) (local $distinct i32) (local $n i32)
    (local $k i32) (local $p i32) (local $x i64) (local $max i64)
    (call $ok (call $open (i32.const 16) (i32.const 4) (i32.const 3) (i32.const 80)))
    (local.set $h (i32.load (i32.const 80)))
    (local.set $total (call $count_words (local.get $h)))
    ;; A page of keys is already in get_many's input format (u32 len + bytes).
    (i64.store (i32.const 64) (i64.const 0))
    (loop $page
      (call $ok (call $keys (local.get $h) (i32.const 64) (i32.const 1024) (i32.const 256)
                            (i32.const 72) (i32.const 76)))
      (local.set $n (i32.load (i32.const 76)))
      (local.set $distinct (i32.add (local.get $distinct) (local.get $n)))
      (call $ok (call $get_many (local.get $h) (i32.const 1024) (i32.load (i32.const 72))
                                (i32.const 2048) (i32.const 2048) (i32.const 72)))
      (local.set $p (i32.const 2048))
      (local.set $k (i32.const 0))
      (block $values_done (loop $values
        (br_if $values_done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $x (i64.load (i32.add (local.get $p) (i32.const 4))))
        (if (i64.gt_s (local.get $x) (local.get $max)) (then (local.set $max (local.get $x))))
        (local.set $p (i32.add (local.get $p) (i32.const 12)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $values)))
      (br_if $page (i64.ne (i64.load (i32.const 64)) (i64.const 0))))
    (call $ok (call $close (local.get $h)))
    (local.get $distinct) (local.get $total) (i32.wrap_i64 (local.get $max)))
)
