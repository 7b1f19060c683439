"""The relay guest (tests/guests/relay.wat) as the tests see it: its exports and their
kinds, and its program language.

A relay keeps handles in a table and runs programs of at most 8 words,
packed into two i64s; `programs` draws them, nested calls to its peers
included.  The encoding mirrors the top of relay.wat.
"""

from __future__ import annotations

from hypothesis import strategies as st
from model import ALL_RIGHTS, Passing
from paths import GUESTS

from broker import Limits
from broker.ownership import parse_pass

RELAY = GUESTS / "relay.wat"
PEERS = ("a", "b", "c")  # a relay's peer number is an index into this
#: b has room for few handles, so passes into it and its own calls meet QUOTA.
LIMITS = {"a": Limits(), "b": Limits(handles=6), "c": Limits()}
GRANTS = {"shared": "rw"}
NSLOTS = 4  # table slots the programs use (the guest has 16)

# The relay's exports, in its table order, and how each passes its handles.
TAKES = ("take_own", "take_borrow", "take_share", "take_own_r", "take_borrow_r", "take_share_r")
GIVES = ("give_own", "give_share", "give_share_r")
PAIRS = ("pair_own_own", "pair_own_share", "pair_borrow_own", "pair_share_borrow_r")
SWAPS = ("swap_borrow_share", "swap_borrow_own", "swap_own_own")
DECLARED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{name: ((name[5:].replace("_r", ":r"),), ()) for name in TAKES},
    **{name: ((), (name[5:].replace("_r", ":r"),)) for name in GIVES},
    "pair_own_own": (("own", "own"), ()),
    "pair_own_share": (("own", "share"), ()),
    "pair_borrow_own": (("borrow", "own"), ()),
    "pair_share_borrow_r": (("share", "borrow:r"), ()),
    "swap_borrow_share": (("borrow",), ("share",)),
    "swap_borrow_own": (("borrow",), ("own",)),
    "swap_own_own": (("own",), ("own",)),
}
EXPORTS = {name: {"params": list(p), "results": list(r)} for name, (p, r) in DECLARED.items()}


def passing(text: str, *, result: bool, mask: int = ALL_RIGHTS) -> Passing:
    declared = parse_pass(text, result=result)
    return Passing(declared.kind, declared.readonly, mask)


PARAMS = {name: [passing(t, result=False) for t in p] for name, (p, _) in DECLARED.items()}
RESULTS = {name: [passing(t, result=True) for t in r] for name, (_, r) in DECLARED.items()}
PARAMS["run"], RESULTS["run"] = [], []  # run(p0, p1): plain parameters only

# --- programs (mirrors relay.wat) -----------------------------------------------

END, NEW, OPEN, CLOSE, CLONE, SET, GET, SET_MAP, GET_MAP, TAKE, GIVE, PAIR, TRAP, SWAP = range(14)
SHARED = b"shared"  # the one named map, granted rw to every relay


def word(op: int, s: int = 0, x: int = 0) -> int:
    return op | s << 4 | x << 8


def pack(words: list[int]) -> tuple[int, int]:
    """A program as the two i64 parameters (unsigned; the host call wraps them)."""
    assert len(words) <= 8
    padded = words + [0] * (8 - len(words))
    return (
        sum(w << 16 * i for i, w in enumerate(padded[:4])),
        sum(w << 16 * i for i, w in enumerate(padded[4:])),
    )


def at(words: list[int], i: int) -> int:
    """Word i of a program; 0 (END) past its end, as in relay.wat."""
    return words[i] if i < min(len(words), 8) else 0


def sub(words: list[int], start: int, n: int) -> list[int]:
    return [at(words, start + k) for k in range(min(n, 8))]


def map_key(x: int) -> bytes:
    return b"m%d" % (x >> 4 & 3)


slots = st.integers(0, NSLOTS - 1)
peer_numbers = st.integers(0, len(PEERS) - 1)
SIMPLE = (NEW, OPEN, CLOSE, CLONE, SET, GET, SET_MAP, GET_MAP)


@st.composite
def programs(draw: st.DrawFn, room: int = 8, depth: int = 0) -> list[int]:
    """A relay program of at most `room` words; calls nest at most three deep.

    Calls are frequent and traps rare; a callee often closes what it was
    lent (else strict borrows trap it)."""
    words: list[int] = []
    while len(words) < room:
        left = room - len(words)
        roll = draw(st.integers(0, 99))
        calls = left >= 2 and depth < 3
        if roll < 6:
            break  # END
        if roll < 8:
            words.append(word(TRAP))
            continue
        s = draw(slots)
        if calls and roll < 30:
            inner = draw(programs(left - 2, depth + 1))
            fn, dest = draw(st.integers(0, len(TAKES) - 1)), draw(slots)
            if len(inner) < left - 2 and draw(st.booleans()):
                inner.append(word(CLOSE, dest))
            o = draw(peer_numbers) | fn << 2 | dest << 8 | len(inner) << 12
            words += [word(TAKE, s), o, *inner]
        elif calls and roll < 40:
            inner = draw(programs(left - 2, depth + 1))
            fn, src = draw(st.integers(0, len(GIVES) - 1)), draw(slots)
            words += [word(GIVE, s), draw(peer_numbers) | fn << 2 | src << 8 | len(inner) << 12]
            words += inner
        elif calls and roll < 46:
            inner = draw(programs(left - 2, depth + 1))
            fn, slot = draw(st.integers(0, len(SWAPS) - 1)), draw(slots)
            words += [word(SWAP, s), draw(peer_numbers) | fn << 2 | slot << 8 | len(inner) << 12]
            words += inner
        elif calls and left >= 3 and roll < 52:
            inner = draw(programs(left - 3, depth + 1))
            fn, second = draw(st.integers(0, len(PAIRS) - 1)), draw(slots)
            d1, d2 = draw(slots), draw(slots)
            if len(inner) < left - 3 and draw(st.booleans()):
                inner.append(word(CLOSE, d1 if PAIRS[fn] == "pair_borrow_own" else d2))
            o = draw(peer_numbers) | fn << 2 | second << 4 | d1 << 8 | d2 << 12
            words += [word(PAIR, s), o, len(inner), *inner]
        else:
            op = draw(st.sampled_from(SIMPLE))
            if op == OPEN:
                x = draw(st.integers(0, 3))
            elif op == CLONE:
                x = draw(slots) | draw(st.integers(0, 3)) << 4
            elif op == SET:
                x = draw(st.integers(1, 255))
            elif op in (SET_MAP, GET_MAP):
                x = draw(slots) | draw(st.integers(0, 1)) << 4
            else:
                x = 0
            words.append(word(op, s, x))
    return words


#: What every relay runs when loaded: maps in slots 0 and 1 (1 holding 0
#: under "m0"), the named map in slot 2, slot 3 empty.
SETUP = [
    word(NEW, 0),
    word(NEW, 1),
    word(OPEN, 2, 3),
    word(SET, 0, 1),
    word(SET_MAP, 1, 0 | 0 << 4),
]
