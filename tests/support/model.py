"""A pure-Python model of the ownership rules: the oracle the C core is checked against.

`test_model.py` drives it beside the core's operations in one module at a
time; `test_model_xmod.py` beside real cross-module calls.  It is written to
be read.  Every rule comes from docs/ownership.md and docs/abi.md ("Order of
checks", "Handles", "Rights", "Lifetime", "Calls between modules"):

- A map's count = owning handles to it in any module + `set_map`
  references stored in live maps + 1 while it is named.  At zero it is
  reclaimed at once, and the maps it referenced lose one reference each,
  cascading.  A map whose count is above zero is alive, even when nothing
  outside its cycle reaches it -- until the cycle collector runs
  (`collect`): then every map that no handle or name reaches, directly or
  through other maps, is reclaimed.
- Handles are per module.  A number the module was never given is `BADF`;
  one it was given and has since closed is `STALE`.
- Checks come in a fixed order: `INVAL` (argument values) -> `BADF`/`STALE`
  (the handle, and for `set_map` the child handle) -> `ACCES` -> `TOOBIG`
  -> the operation's own answers (`NOENT`, `TYPE`, `QUOTA`, `BUSY`).
- Passing handles to another module's export (see "Across modules" below):
  `own` moves, `borrow` lends for the call (the lender's handle is `BUSY`
  for close and move until the borrow ends), `share` gives the callee a
  counted handle of its own; `:r` passes READ only.  All the handles of a
  call pass, or none does.  Teardown closes every handle of a module.

The model never chooses handle numbers: the machine passes in the number
the core issued (`issued=`), or binds it later (`bind`) when the handle was
made inside a guest, and the model checks it is well formed and has never
been issued to that module before.  A handle argument may be a number, the
model's `Handle` itself (what a guest's table holds), or None (a number
never issued: `BADF`).

The model is in three files: the records (maps, entries, handles,
modules) in model_records.py, the rules within one module (counts,
reclaiming, the operations on a module's own handles) in model_ops.py, and
here passing handles between modules; `from model import ...` finds all of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_ops import ModelOps
from model_records import (
    ALL_RIGHTS,
    INDEX_BITS,
    MAX_GENERATION,
    MAX_NAME_LEN,
    READ,
    WRITE,
    Entry,
    Handle,
    HandleRef,
    Map,
    ModuleModel,
    Refused,
    well_formed_handle,
)

from broker.abi import Errno
from broker.ownership import Kind

__all__ = [
    "ALL_RIGHTS",
    "INDEX_BITS",
    "MAX_GENERATION",
    "MAX_NAME_LEN",
    "READ",
    "WRITE",
    "Entry",
    "Handle",
    "HandleRef",
    "Lend",
    "Map",
    "Model",
    "ModuleModel",
    "Passing",
    "Refused",
    "well_formed_handle",
]


@dataclass(frozen=True)
class Passing:
    """How one declared handle parameter or result passes (broker/ownership.py)."""

    kind: Kind
    readonly: bool = False  # the ":r" suffix
    mask: int = ALL_RIGHTS  # the host's narrowing: Own(ref, rights="r")

    def __str__(self) -> str:
        return str(self.kind.name).lower() + (":r" if self.readonly else "")


@dataclass
class Lend:
    """A borrow in progress: `lent` (the lender's handle) is busy while `borrowed` exists."""

    lender: ModuleModel
    lent: Handle
    callee: ModuleModel
    borrowed: Handle


class Model(ModelOps):
    """Maps, modules and the rules that tie them together."""

    # --- across modules ---------------------------------------------------------
    #
    # A call to another module's export passes each declared handle parameter
    # (and, on return, each declared handle result) one of three ways:
    #
    #   own     the handle moves: the giver's number turns STALE, the receiver
    #           owns a new one (the map's count does not change).  Only an
    #           owning handle that is not lent out may move: a borrowed one is
    #           ACCES (not the holder's to give), a lent one BUSY.
    #   borrow  the receiver gets a borrowed handle (not counted) with the
    #           giver's rights; the giver's handle is busy until the borrow
    #           ends, when the call returns (or traps).  A borrowed handle the
    #           receiver left open is closed then.
    #   share   the receiver gets an owning handle of its own: count + 1.
    #
    # A ":r" kind passes READ only; the host may narrow further with a mask.
    # A call's results pass (callee to caller) before its borrows end, so a
    # callee may return what it was lent as `share`, never as `own`.

    def pass_handles(
        self, giver: ModuleModel, items: list[tuple[HandleRef, Passing]], receiver: ModuleModel
    ) -> tuple[list[Handle], list[Lend]]:
        """Pass every (handle, how) of one call, all or none: the receiver's new
        handles in order, and the borrows to end when the call returns."""
        checked: list[tuple[Handle, Passing]] = []
        for ref, how in items:
            handle = giver.lookup(ref)  # BADF / STALE
            if how.kind is Kind.OWN and not handle.owning:
                raise Refused(Errno.ACCES)
            if how.kind is Kind.OWN and handle.busy:
                raise Refused(Errno.BUSY)
            # A handle that moves may not be passed twice in one call.
            for other, other_how in checked:
                if other is handle and Kind.OWN in (how.kind, other_how.kind):
                    raise Refused(Errno.BUSY)
            checked.append((handle, how))
        if receiver.handle_count() + len(checked) > receiver.handle_limit:
            raise Refused(Errno.QUOTA, receiver_full=True)  # room for all, before any moves
        passed, lends = [], []
        for handle, how in checked:
            rights = handle.rights & how.mask & (READ if how.readonly else ALL_RIGHTS)
            new = self._give(receiver, handle.map, rights, owning=how.kind is not Kind.BORROW)
            if how.kind is Kind.OWN:
                self._drop(giver, handle)  # after the receiver's reference: the count stays up
            elif how.kind is Kind.BORROW:
                handle.busy += 1
                lends.append(Lend(giver, handle, receiver, new))
            passed.append(new)
        return passed, lends

    def end_borrow(self, lend: Lend) -> bool:
        """The call returned: the lender's handle is free again, and the borrowed
        handle goes if the callee had not closed it (True: it was left open)."""
        lend.lent.busy -= 1
        if not lend.borrowed.live:
            return False
        self._drop(lend.callee, lend.borrowed)
        return True

    def teardown(self, mod: ModuleModel) -> None:
        """A trap that began in the module: every handle closed."""
        self.close_all(mod)

    def unload(self, mod: ModuleModel, host: ModuleModel) -> None:
        """Unload: every handle closed; what it wrote is charged to the host from now on."""
        self.close_all(mod)
        for m in self.maps:
            if m.alive:
                if m.maker is mod:
                    m.maker = host
                for e in m.entries.values():
                    if e.writer is mod:
                        e.writer = host
