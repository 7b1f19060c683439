;; relay.wat: the guest of tests/ownership/test_model_xmod.py.  Loaded three times, as
;; "a", "b" and "c"; every instance imports every instance's exports (its own
;; too), so handles can travel between modules in any direction, re-entrantly.
;;
;; A module keeps handles in a table of 16 slots and runs small programs: up
;; to 8 words of 16 bits, packed little end first into two i64s (p0, p1).  A
;; word is  op | slot << 4 | x << 8;  T[s] is slot s.  Every op but END
;; appends one i32 to the module's log (a handle, a byte, or 0 / -errno), so
;; the test learns the handle numbers the core issued.
;;
;;   0 END      stop
;;   1 NEW      T[s] = new()                              log h | -errno
;;   2 OPEN     T[s] = open("shared", x & 3)              log h | -errno
;;   3 CLOSE    close(T[s])                               log -errno
;;   4 CLONE    T[x & 15] = clone(T[s], x >> 4 & 3)       log h | -errno
;;   5 SET      set(T[s], "k", [x])                       log -errno
;;   6 GET      get(T[s], "k")                            log the byte | -errno
;;   7 SET_MAP  set_map(T[s], "m"(x >> 4 & 3), T[x & 15]) log -errno
;;   8 GET_MAP  T[x & 15] = get_map(T[s], "m"(x >> 4 & 3)) log h | -errno
;;   9 TAKE     next word o: peer o & 3, export take_* number o >> 2 & 7,
;;              callee slot o >> 8 & 15, n = o >> 12 words after it are the
;;              callee's program.  Passes T[s]; logs the export's 0.
;;  10 GIVE     next word o: peer o & 3, export give_* number o >> 2 & 3,
;;              callee slot o >> 8 & 15, n = o >> 12 words of program.
;;              T[s] = the result; log it.
;;  11 PAIR     next words o, o2: peer o & 3, export pair_* number o >> 2 & 3,
;;              second slot o >> 4 & 15, callee slots o >> 8 & 15 and
;;              o >> 12; n = o2 & 15 words of program.  Passes T[s] and the
;;              second slot; logs the export's 0.
;;  12 TRAP     unreachable
;;  13 SWAP     next word o: peer o & 3, export swap_* number o >> 2 & 3,
;;              callee slot o >> 8 & 15, n = o >> 12 words of program.
;;              Passes T[s]; T[s] = the result; log it.
;;
;; A handle a take_*/pair_* export receives goes to the callee slot it is
;; given (whatever was there stays open, just out of the table) and is logged
;; first.  A give_* export runs its program, then returns its T[slot]; a
;; swap_* export does both: takes a handle into a slot, runs its program,
;; returns what that slot holds then.
(module
  (type $take (func (param i32 i32 i64 i64) (result i32)))
  (type $give (func (param i32 i64 i64) (result i32)))
  (type $pair (func (param i32 i32 i32 i32 i64 i64) (result i32)))
  (type $swap (func (param i32 i32 i64 i64) (result i32)))

  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "clone" (func $clone (param i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "get_map" (func $get_map (param i32 i32 i32 i32) (result i32)))

  ;; The peers' exports, 16 each; table index = peer * 16 + export number.
  (import "a" "take_own" (func $a.take_own (type $take)))
  (import "a" "take_borrow" (func $a.take_borrow (type $take)))
  (import "a" "take_share" (func $a.take_share (type $take)))
  (import "a" "take_own_r" (func $a.take_own_r (type $take)))
  (import "a" "take_borrow_r" (func $a.take_borrow_r (type $take)))
  (import "a" "take_share_r" (func $a.take_share_r (type $take)))
  (import "a" "give_own" (func $a.give_own (type $give)))
  (import "a" "give_share" (func $a.give_share (type $give)))
  (import "a" "give_share_r" (func $a.give_share_r (type $give)))
  (import "a" "pair_own_own" (func $a.pair_own_own (type $pair)))
  (import "a" "pair_own_share" (func $a.pair_own_share (type $pair)))
  (import "a" "pair_borrow_own" (func $a.pair_borrow_own (type $pair)))
  (import "a" "pair_share_borrow_r" (func $a.pair_share_borrow_r (type $pair)))
  (import "a" "swap_borrow_share" (func $a.swap_borrow_share (type $swap)))
  (import "a" "swap_borrow_own" (func $a.swap_borrow_own (type $swap)))
  (import "a" "swap_own_own" (func $a.swap_own_own (type $swap)))
  (import "b" "take_own" (func $b.take_own (type $take)))
  (import "b" "take_borrow" (func $b.take_borrow (type $take)))
  (import "b" "take_share" (func $b.take_share (type $take)))
  (import "b" "take_own_r" (func $b.take_own_r (type $take)))
  (import "b" "take_borrow_r" (func $b.take_borrow_r (type $take)))
  (import "b" "take_share_r" (func $b.take_share_r (type $take)))
  (import "b" "give_own" (func $b.give_own (type $give)))
  (import "b" "give_share" (func $b.give_share (type $give)))
  (import "b" "give_share_r" (func $b.give_share_r (type $give)))
  (import "b" "pair_own_own" (func $b.pair_own_own (type $pair)))
  (import "b" "pair_own_share" (func $b.pair_own_share (type $pair)))
  (import "b" "pair_borrow_own" (func $b.pair_borrow_own (type $pair)))
  (import "b" "pair_share_borrow_r" (func $b.pair_share_borrow_r (type $pair)))
  (import "b" "swap_borrow_share" (func $b.swap_borrow_share (type $swap)))
  (import "b" "swap_borrow_own" (func $b.swap_borrow_own (type $swap)))
  (import "b" "swap_own_own" (func $b.swap_own_own (type $swap)))
  (import "c" "take_own" (func $c.take_own (type $take)))
  (import "c" "take_borrow" (func $c.take_borrow (type $take)))
  (import "c" "take_share" (func $c.take_share (type $take)))
  (import "c" "take_own_r" (func $c.take_own_r (type $take)))
  (import "c" "take_borrow_r" (func $c.take_borrow_r (type $take)))
  (import "c" "take_share_r" (func $c.take_share_r (type $take)))
  (import "c" "give_own" (func $c.give_own (type $give)))
  (import "c" "give_share" (func $c.give_share (type $give)))
  (import "c" "give_share_r" (func $c.give_share_r (type $give)))
  (import "c" "pair_own_own" (func $c.pair_own_own (type $pair)))
  (import "c" "pair_own_share" (func $c.pair_own_share (type $pair)))
  (import "c" "pair_borrow_own" (func $c.pair_borrow_own (type $pair)))
  (import "c" "pair_share_borrow_r" (func $c.pair_share_borrow_r (type $pair)))
  (import "c" "swap_borrow_share" (func $c.swap_borrow_share (type $swap)))
  (import "c" "swap_borrow_own" (func $c.swap_borrow_own (type $swap)))
  (import "c" "swap_own_own" (func $c.swap_own_own (type $swap)))

  (table 48 funcref)
  (elem (i32.const 0)
    $a.take_own $a.take_borrow $a.take_share $a.take_own_r $a.take_borrow_r $a.take_share_r
    $a.give_own $a.give_share $a.give_share_r
    $a.pair_own_own $a.pair_own_share $a.pair_borrow_own $a.pair_share_borrow_r
    $a.swap_borrow_share $a.swap_borrow_own $a.swap_own_own
    $b.take_own $b.take_borrow $b.take_share $b.take_own_r $b.take_borrow_r $b.take_share_r
    $b.give_own $b.give_share $b.give_share_r
    $b.pair_own_own $b.pair_own_share $b.pair_borrow_own $b.pair_share_borrow_r
    $b.swap_borrow_share $b.swap_borrow_own $b.swap_own_own
    $c.take_own $c.take_borrow $c.take_share $c.take_own_r $c.take_borrow_r $c.take_share_r
    $c.give_own $c.give_share $c.give_share_r
    $c.pair_own_own $c.pair_own_share $c.pair_borrow_own $c.pair_share_borrow_r
    $c.swap_borrow_share $c.swap_borrow_own $c.swap_own_own)

  ;; 0x00 out handle, 0x08 out length, 0x10 get buffer, 0x20 the byte to set,
  ;; 0x100 "k", 0x110 "m0m1m2m3", 0x120 "shared", 0x200 the table,
  ;; 0x300 the log's length, 0x400 the log (at most 1024 entries).
  (memory (export "memory") 1)
  (data (i32.const 0x100) "k")
  (data (i32.const 0x110) "m0m1m2m3")
  (data (i32.const 0x120) "shared")

  (func $slot (param $i i32) (result i32)
    (i32.load (i32.add (i32.const 0x200) (i32.shl (i32.and (local.get $i) (i32.const 15)) (i32.const 2)))))

  (func $put (param $i i32) (param $h i32)
    (i32.store (i32.add (i32.const 0x200) (i32.shl (i32.and (local.get $i) (i32.const 15)) (i32.const 2)))
      (local.get $h)))

  (func $log (param $v i32)
    (local $n i32)
    (local.set $n (i32.load (i32.const 0x300)))
    (if (i32.lt_u (local.get $n) (i32.const 1024))
      (then
        (i32.store (i32.add (i32.const 0x400) (i32.shl (local.get $n) (i32.const 2))) (local.get $v))
        (i32.store (i32.const 0x300) (i32.add (local.get $n) (i32.const 1))))))

  ;; An errno as a log entry: 0 for OK, else -errno.
  (func $err (param $e i32)
    (call $log (i32.sub (i32.const 0) (local.get $e))))

  ;; After a call that made a handle at 0x00: on OK put it in slot $s and log
  ;; it, else log -errno.
  (func $made (param $e i32) (param $s i32)
    (if (local.get $e)
      (then (call $err (local.get $e)))
      (else
        (call $put (local.get $s) (i32.load (i32.const 0)))
        (call $log (i32.load (i32.const 0))))))

  ;; Key "m<i>" for set_map/get_map.
  (func $mkey (param $x i32) (result i32)
    (i32.add (i32.const 0x110) (i32.shl (i32.and (i32.shr_u (local.get $x) (i32.const 4)) (i32.const 3)) (i32.const 1))))

  ;; Word $i (0..7) of a program; 0 (END) past its end.
  (func $word (param $p0 i64) (param $p1 i64) (param $i i32) (result i32)
    (if (result i32) (i32.ge_u (local.get $i) (i32.const 8))
      (then (i32.const 0))
      (else
        (i32.wrap_i64
          (i64.and
            (i64.shr_u
              (if (result i64) (i32.lt_u (local.get $i) (i32.const 4))
                (then (local.get $p0)) (else (local.get $p1)))
              (i64.extend_i32_u (i32.shl (i32.and (local.get $i) (i32.const 3)) (i32.const 4))))
            (i64.const 0xFFFF))))))

  ;; Words $start .. $start + $n - 1 of a program, packed as a program of their own.
  (func $sub (param $p0 i64) (param $p1 i64) (param $start i32) (param $n i32) (result i64 i64)
    (local $k i32) (local $q0 i64) (local $q1 i64) (local $w i64)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (br_if $done (i32.ge_u (local.get $k) (i32.const 8)))
        (local.set $w (i64.extend_i32_u
          (call $word (local.get $p0) (local.get $p1) (i32.add (local.get $start) (local.get $k)))))
        (if (i32.lt_u (local.get $k) (i32.const 4))
          (then (local.set $q0 (i64.or (local.get $q0)
            (i64.shl (local.get $w) (i64.extend_i32_u (i32.shl (local.get $k) (i32.const 4)))))))
          (else (local.set $q1 (i64.or (local.get $q1)
            (i64.shl (local.get $w)
              (i64.extend_i32_u (i32.shl (i32.sub (local.get $k) (i32.const 4)) (i32.const 4))))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $next)))
    (local.get $q0) (local.get $q1))

  (func $run (param $p0 i64) (param $p1 i64)
    (local $i i32) (local $w i32) (local $op i32) (local $s i32) (local $x i32)
    (local $o i32) (local $n i32) (local $e i32)
    (block $end
      (loop $step
        (br_if $end (i32.ge_u (local.get $i) (i32.const 8)))
        (local.set $w (call $word (local.get $p0) (local.get $p1) (local.get $i)))
        (local.set $op (i32.and (local.get $w) (i32.const 15)))
        (local.set $s (i32.and (i32.shr_u (local.get $w) (i32.const 4)) (i32.const 15)))
        (local.set $x (i32.shr_u (local.get $w) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $end (i32.eqz (local.get $op)))
        (block $next
          (if (i32.eq (local.get $op) (i32.const 1))
            (then
              (call $made (call $new (i32.const 0)) (local.get $s))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 2))
            (then
              (call $made
                (call $open (i32.const 0x120) (i32.const 6) (i32.and (local.get $x) (i32.const 3)) (i32.const 0))
                (local.get $s))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 3))
            (then
              (call $err (call $close (call $slot (local.get $s))))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 4))
            (then
              (call $made
                (call $clone (call $slot (local.get $s))
                  (i32.and (i32.shr_u (local.get $x) (i32.const 4)) (i32.const 3)) (i32.const 0))
                (local.get $x))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 5))
            (then
              (i32.store8 (i32.const 0x20) (local.get $x))
              (call $err (call $set (call $slot (local.get $s))
                (i32.const 0x100) (i32.const 1) (i32.const 0x20) (i32.const 1)))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 6))
            (then
              (local.set $e (call $get (call $slot (local.get $s))
                (i32.const 0x100) (i32.const 1) (i32.const 0x10) (i32.const 8) (i32.const 0x08)))
              (if (local.get $e)
                (then (call $err (local.get $e)))
                (else (call $log (i32.load8_u (i32.const 0x10)))))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 7))
            (then
              (call $err (call $set_map (call $slot (local.get $s))
                (call $mkey (local.get $x)) (i32.const 2) (call $slot (local.get $x))))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 8))
            (then
              (call $made
                (call $get_map (call $slot (local.get $s))
                  (call $mkey (local.get $x)) (i32.const 2) (i32.const 0))
                (local.get $x))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 9))
            (then
              (local.set $o (call $word (local.get $p0) (local.get $p1) (local.get $i)))
              (local.set $n (i32.shr_u (local.get $o) (i32.const 12)))
              (call $log
                (call_indirect (type $take)
                  (call $slot (local.get $s))
                  (i32.and (i32.shr_u (local.get $o) (i32.const 8)) (i32.const 15))
                  (call $sub (local.get $p0) (local.get $p1)
                    (i32.add (local.get $i) (i32.const 1)) (local.get $n))
                  (i32.add
                    (i32.mul (i32.and (local.get $o) (i32.const 3)) (i32.const 16))
                    (i32.and (i32.shr_u (local.get $o) (i32.const 2)) (i32.const 7)))))
              (local.set $i (i32.add (local.get $i) (i32.add (i32.const 1) (local.get $n))))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 10))
            (then
              (local.set $o (call $word (local.get $p0) (local.get $p1) (local.get $i)))
              (local.set $n (i32.shr_u (local.get $o) (i32.const 12)))
              (local.set $e
                (call_indirect (type $give)
                  (i32.and (i32.shr_u (local.get $o) (i32.const 8)) (i32.const 15))
                  (call $sub (local.get $p0) (local.get $p1)
                    (i32.add (local.get $i) (i32.const 1)) (local.get $n))
                  (i32.add
                    (i32.mul (i32.and (local.get $o) (i32.const 3)) (i32.const 16))
                    (i32.add (i32.const 6) (i32.and (i32.shr_u (local.get $o) (i32.const 2)) (i32.const 3))))))
              (call $put (local.get $s) (local.get $e))
              (call $log (local.get $e))
              (local.set $i (i32.add (local.get $i) (i32.add (i32.const 1) (local.get $n))))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 11))
            (then
              (local.set $o (call $word (local.get $p0) (local.get $p1) (local.get $i)))
              (local.set $n (i32.and (call $word (local.get $p0) (local.get $p1)
                (i32.add (local.get $i) (i32.const 1))) (i32.const 15)))
              (call $log
                (call_indirect (type $pair)
                  (call $slot (local.get $s))
                  (call $slot (i32.shr_u (local.get $o) (i32.const 4)))
                  (i32.and (i32.shr_u (local.get $o) (i32.const 8)) (i32.const 15))
                  (i32.shr_u (local.get $o) (i32.const 12))
                  (call $sub (local.get $p0) (local.get $p1)
                    (i32.add (local.get $i) (i32.const 2)) (local.get $n))
                  (i32.add
                    (i32.mul (i32.and (local.get $o) (i32.const 3)) (i32.const 16))
                    (i32.add (i32.const 9) (i32.and (i32.shr_u (local.get $o) (i32.const 2)) (i32.const 3))))))
              (local.set $i (i32.add (local.get $i) (i32.add (i32.const 2) (local.get $n))))
              (br $next)))
          (if (i32.eq (local.get $op) (i32.const 12))
            (then unreachable))
          (if (i32.eq (local.get $op) (i32.const 13))
            (then
              (local.set $o (call $word (local.get $p0) (local.get $p1) (local.get $i)))
              (local.set $n (i32.shr_u (local.get $o) (i32.const 12)))
              (local.set $e
                (call_indirect (type $swap)
                  (call $slot (local.get $s))
                  (i32.and (i32.shr_u (local.get $o) (i32.const 8)) (i32.const 15))
                  (call $sub (local.get $p0) (local.get $p1)
                    (i32.add (local.get $i) (i32.const 1)) (local.get $n))
                  (i32.add
                    (i32.mul (i32.and (local.get $o) (i32.const 3)) (i32.const 16))
                    (i32.add (i32.const 13) (i32.and (i32.shr_u (local.get $o) (i32.const 2)) (i32.const 3))))))
              (call $put (local.get $s) (local.get $e))
              (call $log (local.get $e))
              (local.set $i (i32.add (local.get $i) (i32.add (i32.const 1) (local.get $n))))
              (br $next)))
          (call $log (i32.const -100))) ;; an op this guest does not know
        (br $step))))

  (func $take (param $h i32) (param $dest i32) (param $p0 i64) (param $p1 i64) (result i32)
    (call $put (local.get $dest) (local.get $h))
    (call $log (local.get $h))
    (call $run (local.get $p0) (local.get $p1))
    (i32.const 0))

  (func $give (param $src i32) (param $p0 i64) (param $p1 i64) (result i32)
    (call $run (local.get $p0) (local.get $p1))
    (call $slot (local.get $src)))

  (func $pair (param $h1 i32) (param $h2 i32) (param $d1 i32) (param $d2 i32)
              (param $p0 i64) (param $p1 i64) (result i32)
    (call $put (local.get $d1) (local.get $h1))
    (call $log (local.get $h1))
    (call $put (local.get $d2) (local.get $h2))
    (call $log (local.get $h2))
    (call $run (local.get $p0) (local.get $p1))
    (i32.const 0))

  (func $swap (param $h i32) (param $slot i32) (param $p0 i64) (param $p1 i64) (result i32)
    (call $put (local.get $slot) (local.get $h))
    (call $log (local.get $h))
    (call $run (local.get $p0) (local.get $p1))
    (call $slot (local.get $slot)))

  ;; The test's manifest declares how each passes its handles (own/borrow/share, ":r").
  (func (export "take_own") (type $take)
    (call $take (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "take_borrow") (type $take)
    (call $take (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "take_share") (type $take)
    (call $take (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "take_own_r") (type $take)
    (call $take (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "take_borrow_r") (type $take)
    (call $take (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "take_share_r") (type $take)
    (call $take (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "give_own") (type $give)
    (call $give (local.get 0) (local.get 1) (local.get 2)))
  (func (export "give_share") (type $give)
    (call $give (local.get 0) (local.get 1) (local.get 2)))
  (func (export "give_share_r") (type $give)
    (call $give (local.get 0) (local.get 1) (local.get 2)))
  (func (export "pair_own_own") (type $pair)
    (call $pair (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))
  (func (export "pair_own_share") (type $pair)
    (call $pair (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))
  (func (export "pair_borrow_own") (type $pair)
    (call $pair (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))
  (func (export "pair_share_borrow_r") (type $pair)
    (call $pair (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))

  (func (export "swap_borrow_share") (type $swap)
    (call $swap (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "swap_borrow_own") (type $swap)
    (call $swap (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "swap_own_own") (type $swap)
    (call $swap (local.get 0) (local.get 1) (local.get 2) (local.get 3)))

  ;; run(p0, p1): run a program with no handle passed in.
  (func (export "run") (param $p0 i64) (param $p1 i64) (result i32)
    (call $run (local.get $p0) (local.get $p1))
    (i32.const 0))

  ;; poke(h, what): use a raw handle number, not from the table: 0 get "k"
  ;; (the byte | -errno), 1 set "k" = 0x55 (-errno), 2 close (-errno).
  (func (export "poke") (param $h i32) (param $what i32) (result i32)
    (local $e i32)
    (if (i32.eqz (local.get $what))
      (then
        (local.set $e (call $get (local.get $h)
          (i32.const 0x100) (i32.const 1) (i32.const 0x10) (i32.const 8) (i32.const 0x08)))
        (return (if (result i32) (local.get $e)
          (then (i32.sub (i32.const 0) (local.get $e)))
          (else (i32.load8_u (i32.const 0x10)))))))
    (if (i32.eq (local.get $what) (i32.const 1))
      (then
        (i32.store8 (i32.const 0x20) (i32.const 0x55))
        (return (i32.sub (i32.const 0)
          (call $set (local.get $h) (i32.const 0x100) (i32.const 1) (i32.const 0x20) (i32.const 1))))))
    (i32.sub (i32.const 0) (call $close (local.get $h))))

  ;; The log: its length, one entry, and clearing it.
  (func (export "log_len") (result i32) (i32.load (i32.const 0x300)))
  (func (export "log_at") (param $i i32) (result i32)
    (i32.load (i32.add (i32.const 0x400) (i32.shl (i32.and (local.get $i) (i32.const 1023)) (i32.const 2)))))
  (func (export "log_clear") (i32.store (i32.const 0x300) (i32.const 0)))

  ;; slot(i): T[i], so the test can compare its table with the model's.
  (func (export "slot") (param $i i32) (result i32) (call $slot (local.get $i)))
)
