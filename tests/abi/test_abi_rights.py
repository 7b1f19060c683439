"""The rights each function needs, as broker/abi/ declares them, are the ones the core checks.

For every handle parameter of every function (abi_table.CALLS gives a call
that succeeds), the expected behaviour is derived from the declaration
alone: a handle carrying the declared rights but one is ACCES, with no
output and no change; a handle carrying exactly the declared rights is not
(the call answers as with a handle carrying every right).  Nothing here
names a function's rights: a function declared with other rights, or a core
checking other rights than declared, fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from abi_table import CALLS, State, prepared
from guest_driver import ACCES, OK
from stores_fixtures import every_store
from test_abi_errnos import call_with_handle

from broker import Broker
from broker.abi import BY_NAME, Rights


@dataclass(frozen=True)
class Case:
    """Function `fn` with handle argument `index` carrying exactly `rights`."""

    fn: str
    index: int
    param: str
    rights: Rights

    def __str__(self) -> str:
        shown = "|".join(r.name or "" for r in (Rights.READ, Rights.WRITE) if r in self.rights)
        return f"{self.fn}-{self.param}-{shown or 'none'}"


def _cases(*, missing_one: bool) -> list[Case]:
    """Every handle of every function with a succeeding call: with each right
    it needs taken away in turn, or with exactly the rights it needs."""
    out = []
    for fn in CALLS:
        f = BY_NAME[fn]
        for p in f.handles:
            if missing_one:
                out += [Case(fn, f.index(p.name), p.name, p.needs & ~r) for r in p.needs]
            else:
                out.append(Case(fn, f.index(p.name), p.name, p.needs))
    return out


MISSING_ONE = _cases(missing_one=True)
EXACT = _cases(missing_one=False)


def weakened(s: State, case: Case) -> list[int]:
    """CALLS[fn]'s arguments with the handle at `case.index` replaced by a
    clone of it carrying only `case.rights`.  A rights argument (clone's:
    at most the handle's) asks for those rights too."""
    args = s.args(case.fn)
    err, weak = s.d.clone(args[case.index], int(case.rights))
    assert err == OK and weak is not None
    args[case.index] = weak
    f = BY_NAME[case.fn]
    if "rights" in (p.name for p in f.params) and f.handles:
        args[f.index("rights")] = int(case.rights)
    return args


def test_every_declared_right_is_exercised() -> None:
    """The cases take away every right of every handle of every function the driver calls."""
    declared = {(fn, p.name, r) for fn in CALLS for p in BY_NAME[fn].handles for r in p.needs}
    taken = {(c.fn, c.param, BY_NAME[c.fn].params[c.index].needs & ~c.rights) for c in MISSING_ONE}
    assert declared == taken
    assert ("set_map", "child_h", Rights.READ) in taken  # not only `h`


@every_store
class TestDeclaredRights:
    @pytest.mark.parametrize("case", MISSING_ONE, ids=str)
    def test_one_right_missing_is_acces(self, broker: Broker, case: Case) -> None:
        """A handle lacking one declared right: ACCES, nothing written, nothing changed."""
        s = prepared(broker)
        weak = weakened(s, case)[case.index]
        assert call_with_handle(s, case.fn, case.index, weak) == ACCES

    @pytest.mark.parametrize("case", EXACT, ids=str)
    def test_exactly_the_declared_rights_suffice(self, broker: Broker, case: Case) -> None:
        """A handle carrying exactly the declared rights answers as a full one does."""
        s = prepared(broker)
        args = weakened(s, case)
        assert s.d.call(case.fn, *args) == s.answer(case.fn)
