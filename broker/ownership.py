"""Who may do what with a map: the ownership rules, stated once for people.

The C core enforces them (native/ownership.c, native/link.c); this module
says them, parses the manifest's kinds, and gives host code the `Own`,
`Borrow` and `Share` wrappers.

Counting (docs/ownership.md "What keeps a map alive").  A map stays alive while its count is above
zero; the count is the number of
  - owning handles to it, in any module or the host,
  - references to it stored in live maps (`set_map`),
  - one more while it is a named map (named maps live as long as the broker).
Borrowed handles do not count.  At zero the map is reclaimed at once, and
the maps it referenced lose a reference each (which may reclaim them too).

Handles.  A handle belongs to one module.  It carries rights (READ, WRITE);
every copy may only narrow them: `clone`, `get_map` (the parent's rights),
and `:r` passes.  A handle that was closed or moved away is STALE for ever.

Passing a handle to another module's export, as the exporter declares:

| kind     | at the call                                   | after it returns            |
|----------|-----------------------------------------------|-----------------------------|
| own      | moves: the caller's number turns STALE        | the callee owns it          |
| borrow   | the callee gets a borrowed handle, the        | the borrow ends (the broker |
|          | caller's rights; the caller's handle is BUSY  | closes it if the callee did |
|          | (no close, no move) until the call returns    | not; strict mode: a trap)   |
| share    | the callee gets its own owning handle (+1)    | both own one                |

  - Only an owning handle that is not lent out may move (own): a borrowed
    one cannot be given away, a lent one is BUSY.  Any live handle may be
    lent (borrow) or shared (share); sharing a borrowed handle is how a
    callee keeps a map past the call, like `clone`.
  - A handle that moves may not appear twice in one call (BUSY).
  - `:r` (own:r, borrow:r, share:r) passes READ only.
  - Results may be own or share, never borrow.
  - All declared handles of a call pass, or none does: a guest whose handle
    cannot pass traps (the rule violation is the caller's); the host gets
    the errno as an exception.
  - Parameters not declared pass unchanged: a handle number passed that
    way means nothing in the callee (BADF/STALE there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .abi import PASS_READONLY, PassKind, Rights, parse_rights
from .names import shown_name

if TYPE_CHECKING:
    from .mapref import MapRef

PLAIN_TYPES = ("i32", "i64", "f32", "f64")


Kind = PassKind  # how a declared parameter or result passes (broker/abi/)
READONLY = PASS_READONLY  # the ":r" suffix, or'd into the C code


@dataclass(frozen=True)
class Pass:
    """One declared parameter or result: a plain type, or a handle kind."""

    text: str
    kind: Kind
    readonly: bool = False

    @property
    def code(self) -> int:
        return int(self.kind) | (READONLY if self.readonly else 0)

    @property
    def is_handle(self) -> bool:
        return self.kind is not Kind.PLAIN


def parse_pass(text: object, *, result: bool) -> Pass:
    """A manifest kind: a plain type, or own/borrow/share with an optional ':r'."""
    if not isinstance(text, str):
        raise ValueError(f"a kind must be a string, not {text!r}")
    base, sep, suffix = text.partition(":")
    if base in PLAIN_TYPES and not sep:
        return Pass(text, Kind.PLAIN)
    names = {k.name.lower(): k for k in (Kind.OWN, Kind.BORROW, Kind.SHARE)}
    if base in names and (not sep or suffix == "r"):
        if result and base == "borrow":
            raise ValueError("a result may be 'own' or 'share', never 'borrow'")
        return Pass(text, names[base], readonly=bool(sep))
    allowed = ", ".join(PLAIN_TYPES + tuple(names))
    raise ValueError(f"unknown kind {text!r} (one of {allowed}; handle kinds may end in ':r')")


def parse_kind(text: object, *, result: bool) -> str:
    """The kind's text, checked (the manifest keeps the text)."""
    return parse_pass(text, result=result).text


def rights_value(rights: object) -> Rights:
    """Rights given as 'r', 'w' or 'rw', or as an int combining READ and WRITE
    (a module's grants, a host wrapper's rights); ValueError otherwise."""
    if isinstance(rights, str):
        return parse_rights(rights)
    if type(rights) is not int and not isinstance(rights, Rights) or rights & ~3:
        raise ValueError(
            f"rights must be a combination of READ and WRITE, not {shown_name(rights)}"
        )
    return Rights(rights)


def rights_mask(rights: str | int | None) -> int:
    """A host wrapper's rights ('r', 'w', 'rw', an int, or None for all) as a mask."""
    if rights is None:
        return int(Rights.READ | Rights.WRITE)
    return int(rights_value(rights))


@dataclass(frozen=True)
class _Passing:
    ref: MapRef
    rights: str | int | None = None

    kind = Kind.PLAIN

    @property
    def mask(self) -> int:
        return rights_mask(self.rights)


class Own(_Passing):
    """Give the map to the callee: the MapRef becomes unusable (StaleHandleError)."""

    kind = Kind.OWN


class Borrow(_Passing):
    """Lend the map for the call: the MapRef cannot be closed until it returns."""

    kind = Kind.BORROW


class Share(_Passing):
    """Give the callee its own reference; the MapRef stays usable."""

    kind = Kind.SHARE
