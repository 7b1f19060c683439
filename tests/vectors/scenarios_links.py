"""More scenarios for tests/vectors/: links between modules and the cycle collector.

Mutual and self imports, a module passing handles to itself, BUSY and ACCES
passes, full handle tables on either side, strict borrows, and the
collector (when it runs, drop notices in row order, a cycle lent to a call,
gc_threshold 0 and 1).  scenarios.py adds these to its SCENARIOS; each is a
plain list of steps (`c(target, *args)`, `st()`), recorded like the others.
"""

from __future__ import annotations

from typing import Any

H1, H2, H3, H4 = 2097152, 2097153, 2097154, 2097155  # a module's first handle numbers
SCENARIOS: dict[str, tuple[str, str, list[dict[str, Any]]]] = {}  # name -> (about, app, steps)


def c(target: str, *args: int) -> dict[str, Any]:
    """A call step."""
    return {"call": target, "args": list(args)}


def st() -> dict[str, Any]:
    """A stats step."""
    return {"stats": {}}


def vec(name: str, about: str, app: str, steps: list[dict[str, Any]]) -> None:
    SCENARIOS[name] = (about, app, steps)


XM = (
    '[modules.caller]\npath = "xmod_caller.wat"\n{caller}\n'
    '[modules.callee]\npath = "xmod_callee.wat"\n{callee}\n'
)


def xm(broker: str = "", caller: str = "", callee: str = "") -> str:
    return broker + XM.format(caller=caller, callee=callee)


vec(
    "x_pingpong",
    "mutual imports in either load order, and a module importing its own export",
    (
        '[modules.pong]\npath = "xmod_pong.wat"\n[modules.ping]\n'
        'path = "xmod_ping.wat"\n[modules.selfref]\npath = "xmod_self.wat"\n'
    ),
    [c("ping.ping", 4), c("pong.pong", 5), c("selfref.fact", 5), c("ping.ping", 0), st()],
)

vec(
    "x_selfpass",
    "own, borrow, share and results own/share:r between a module and itself; a full table",
    '[modules.selfpass]\npath = "self_pass.wat"\nlimits = { handles = 4 }\n'
    'exports.inner_own = { params = ["own"] }\nexports.inner_borrow = { params = ["borrow"] }\n'
    'exports.inner_share = { params = ["share"] }\n'
    'exports.give_own = { results = ["own"] }\n'
    'exports.give_share = { results = ["share:r"] }\n',
    [
        c("selfpass.new"),
        c("selfpass.outer_own", H1),
        c("selfpass.got"),
        c("selfpass.len", H1),
        st(),
        c("selfpass.new"),
        c("selfpass.outer_borrow", H1),
        c("selfpass.got"),
        st(),
        c("selfpass.outer_share", H1),
        c("selfpass.got"),
        st(),
        c("selfpass.outer_give_own", H1),
        st(),
        c("selfpass.outer_give_share", H2),
        st(),
        c("selfpass.fill", 1),
        st(),
        c("selfpass.outer_share", H1),
        st(),
        c("selfpass.outer_borrow", H1),
        st(),
        c("selfpass.new"),
        c("selfpass.len", H1),
    ],
)

callee_decl = (
    'exports.keep = { params = ["share"] }\nexports.take = { params = ["own"] }\n'
    'exports.pair = { params = ["own", "own"] }\nexports.call_back = { params = ["borrow"] }\n'
    'exports.keep_clone = { params = ["borrow:r"] }\nexports.share_on = { params = ["borrow"] }\n'
    'exports.trap = { params = ["borrow"] }\nexports.build = { params = ["borrow"] }\n'
    'exports.give_back = { params = ["borrow"], results = ["own"] }\n'
    'exports.poke = { params = ["borrow:r"] }\n'
)
vec(
    "x_busy",
    (
        "own of a lent handle re-entering the lender (BUSY), one handle twice as own, "
        "borrow:r, share on, results own of a borrow (ACCES), a trapping callee"
    ),
    xm(caller='exports.adopt = { params = ["share"] }\n', callee=callee_decl),
    [
        c("caller.new"),
        c("caller.via_call_back", H1, 1),
        st(),
        c("caller.new"),
        c("caller.new"),
        c("caller.via_call_back", H1, 2),
        c("caller.load32", 256),
        st(),
        c("caller.via_pair", H1, H1),
        st(),
        c("caller.new"),
        c("caller.via_pair", H1, H2),
        st(),
        c("caller.new"),
        c("caller.new"),
        c("caller.via_keep_clone", H1, 3),
        c("callee.write", H1, 1, 1),
        c("callee.read", H1, 1),
        c("caller.via_share_on", H2),
        st(),
        c("caller.via_poke", H1),
        c("caller.via_build", H1),
        st(),
        c("caller.count", H1),
        c("caller.via_give_back", H1),
        st(),
        c("caller.via_trap", H1),
        st(),
        c("caller.close", H1),
        c("caller.close", H2),
        c("caller.close", H3),
        st(),
    ],
)

vec(
    "x_quota",
    (
        "a callee with no room traps and is torn down (all or none); a caller with no "
        "room for a result is torn down"
    ),
    xm(
        callee=(
            'limits = { handles = 2 }\nexports.keep = { params = ["own"] }\n'
            'exports.pair = { params = ["own", "share"] }\n'
            'exports.give = { results = ["own"] }\n'
        ),
        caller="limits = { handles = 3 }\n",
    ),
    [
        c("caller.new"),
        c("caller.new"),
        c("caller.new"),
        c("caller.via_keep", H1),
        c("caller.via_pair", H2, H3),
        st(),
        c("caller.via_keep", H2),
        st(),
        c("callee.new"),
        c("caller.via_give"),
        st(),
        c("caller.new"),
        c("caller.new"),
        c("caller.via_give"),
        st(),
        c("callee.count", H1),
        c("caller.count", H1),
    ],
)

vec(
    "x_strict",
    (
        "strict_borrows: a clone kept is fine, a borrow left open traps the callee, "
        "results share of a borrow"
    ),
    xm(
        "[broker]\nstrict_borrows = true\n",
        callee=(
            'exports.keep_clone = { params = ["borrow"] }\n'
            'exports.give_back = { params = ["borrow"], results = ["share"] }\n'
            'exports.end_borrow = { params = ["borrow"] }\n'
            'exports.call_back = { params = ["borrow"] }\n'
        ),
    ),
    [
        c("caller.new"),
        c("caller.via_keep_clone", H1, 3),
        st(),
        c("caller.via_give_back", H1),
        st(),
        c("caller.via_end_borrow", H1),
        c("caller.via_call_back", H1, 0),
        st(),
        c("callee.new"),
    ],
)

churn = (
    '[broker]\ngc_threshold = {t}\n[modules.relay]\npath = "gc_relay.wat"\n'
    '[modules.churn]\npath = "gc_churn.wat"\n'
    'exports.churn = {{ params = ["borrow", "i32"] }}\n'
    'exports.boom_back = {{ params = ["borrow"] }}\n'
)
vec(
    "gc_lend",
    "the collector runs while a cycle's handle is lent; a trap while lent",
    churn.format(t=3),
    [
        c("relay.make_pair"),
        c("relay.lend", H1, 5),
        st(),
        c("relay.read", H1, 1),
        c("relay.close", H1),
        st(),
        c("relay.make_pair"),
        c("relay.lend_boom", H1),
        st(),
        c("churn.garbage", 1),
        st(),
        c("relay.close", H1),
        st(),
    ],
)
vec(
    "gc_notices",
    "drop notices of collected maps, after the call; a teardown releasing a ring",
    churn.format(t=5),
    [c("churn.garbage_watched", 7, 100), c("churn.log_len")]
    + [c("churn.log_at", i) for i in range(7)]
    + [
        c("churn.ring", 3, 1),
        c("churn.watch", H1, 1),
        c("churn.garbage_watched", 3, 200),
        c("churn.log_len"),
        c("churn.close", H1),
        st(),
        c("churn.garbage", 1),
        c("churn.log_len"),
    ]
    + [c("churn.log_at", i) for i in range(7, 14)]
    + [
        c("churn.ring", 5, 1),
        c("churn.trap"),
        st(),
        c("churn.garbage", 2),
        st(),
        c("churn.new"),
        c("churn.new"),
    ],
)
vec(
    "gc_off",
    "gc_threshold = 0: no collection by itself",
    churn.format(t=0),
    [c("churn.garbage", 50), st(), c("churn.ring", 3, 0), st()],
)
vec(
    "gc_one",
    "gc_threshold = 1: a collection at every release that leaves a referenced map alive",
    churn.format(t=1),
    [
        c("churn.ring", 3, 1),
        c("churn.new"),
        c("churn.link", H2, 1, H1),
        c("churn.close", H1),
        st(),
        c("churn.unlink", H2, 1),
        st(),
        c("churn.ring", 2, 1),
        c("churn.watch", H1, 9),
        c("churn.close", H2),
        st(),
    ],
)
vec(
    "gc_order",
    "collected maps' drop notices in the C core's row order (rows reused last-freed-first)",
    churn.format(t=6),
    [
        c("churn.new"),
        c("churn.new"),
        c("churn.new"),
        c("churn.close", H2),
        c("churn.close", H1),
        c("churn.close", H3),
        c("churn.garbage_watched", 3, 300),
        c("churn.log_len"),
        st(),
        c("churn.garbage", 2),
        c("churn.log_len"),
        c("churn.log_at", 0),
        c("churn.log_at", 1),
        c("churn.log_at", 2),
        st(),
        c("churn.new"),
        c("churn.new"),
        c("churn.new"),
    ],
)
