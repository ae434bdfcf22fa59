"""The conformance case-ID grammar, and the order and groups the reports put cases in.

    ID      = area "." feature { "." variant } "." source "." config [ "." "ws" N ]
    source  = "cpu" | "cuda"
    config  = "pin<0|1>_share<0|1>" or "default"

An ID is parsed from the right: a last segment `ws<N>` is the rank count, then the config, then
the source; the first segment is the area, the second the feature, whatever lies between is the
variant (results schema_version 2, e.g. `stager.dtype.bfloat16.cpu.pin0_share0`,
`utils.create_cpu_state_dict.cpu.pin0_share1.ws4`).

Schema-1 IDs parse too, with what they lack left empty (`utils.gather_state_dict.cpu.ws2` has no
config; `stager.dtype_bfloat16.cpu.pin0_share0` has its variant glued onto the feature): they group
less finely but never fail.  Standard library only.
"""
import re
from dataclasses import dataclass

AREAS = ("stager", "utils", "replication")
SOURCES = ("cpu", "cuda")
_CONFIG = re.compile(r"^(pin[01]_share[01]|default)$")
_RANKS = re.compile(r"^ws([0-9]+)$")


@dataclass(frozen=True)
class CaseId:
    """The parts of one case ID; `variant` is a tuple of segments, `ranks` 0 for one rank."""
    text: str
    area: str
    feature: str
    variant: tuple
    source: str
    config: str
    ranks: int

    @property
    def group(self):
        """`area.feature`: the rows a side-by-side report puts under one heading."""
        return f"{self.area}.{self.feature}" if self.feature else self.area


def parse(text):
    """The CaseId of an ID string (any string parses; missing parts are empty)."""
    parts = text.split(".")
    ranks = 0
    if len(parts) > 2 and _RANKS.match(parts[-1]):
        ranks = int(_RANKS.match(parts.pop()).group(1))
    config = parts.pop() if len(parts) > 2 and _CONFIG.match(parts[-1]) else ""
    source = parts.pop() if len(parts) > 2 and parts[-1] in SOURCES else ""
    area = parts[0]
    feature = parts[1] if len(parts) > 1 else ""
    return CaseId(text, area, feature, tuple(parts[2:]), source, config, ranks)


def _position(values, value):
    return values.index(value) if value in values else len(values)


def sort_key(text):
    """Cases ordered by area (stager, utils, replication, then others), feature, variant, source
    (cpu before cuda), config and rank count."""
    case = parse(text)
    return (_position(AREAS, case.area), case.area, case.feature, case.variant,
            _position(SOURCES, case.source), case.source, case.config, case.ranks, text)


def area_of(text):
    """The area of an ID: its first segment."""
    return text.split(".", 1)[0]
