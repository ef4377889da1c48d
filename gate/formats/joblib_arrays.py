"""What joblib writes between pickle opcodes, worked out from values the pickle itself holds.

`joblib.dump` pickles each NumPy array as a `joblib.numpy_pickle.NumpyArrayWrapper` (its
subclass, shape, order, dtype, and since joblib 1.2 numpy_array_alignment_bytes), and right
after the wrapper's BUILD opcode writes the array outside the pickle: a padding-length byte,
that many padding bytes, then the raw elements; for an array of objects, a complete nested
pickle instead. `joblib.load` reads them in its BUILD handler. Pure data and arithmetic here;
gate/formats/pickle_scan.py tracks the values and skips the bytes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_DTYPE_CODE = re.compile(r"^[<>|=]?([biufcmMOSUV])(\d+)$")
_UNICODE_CHAR_BYTES = 4


class JoblibLayoutError(ValueError):
    """The wrapper does not say unambiguously what follows it."""


@dataclass
class Dtype:
    """numpy.dtype(code, False, True), then its BUILD state (numpy's own pickle of a dtype)."""

    code: str
    itemsize: int | None = None
    hasobject: bool | None = None  # None: the state hides something the scan cannot follow
    built: bool = False

    @classmethod
    def from_code(cls, code: str) -> Dtype:
        match = _DTYPE_CODE.match(code)
        if not match:
            return cls(code)
        kind, digits = match.group(1), int(match.group(2))
        size = digits * _UNICODE_CHAR_BYTES if kind == "U" else digits
        return cls(code, size, kind == "O")

    def set_state(self, state: object) -> None:
        """numpy's __setstate__, as far as the size and the object-ness go.

        numpy takes hasobject from the flags (bit 0) and the itemsize from elsize only for
        flexible kinds (S, U, V). A state whose flags contradict its code, fields or subarray
        (numpy would then read object pointers as raw bytes) leaves the dtype unknown, and so
        does a second BUILD, which numpy's pickles never write.
        """
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if self.built or not isinstance(state, tuple) or len(state) < 8 or not isinstance(state[7], int):
            self.built = True
            self.itemsize = self.hasobject = None
            return
        self.built = True
        subarray, fields, elsize, flags = state[2], state[4], state[5], state[7]
        if self.code.lstrip("<>|=")[:1] in ("S", "U", "V") and isinstance(elsize, int) and elsize > 0:
            self.itemsize = elsize
        parts: list[object] = []
        if subarray is not None:
            parts.append(subarray[0] if isinstance(subarray, tuple) and subarray else None)
        if fields is not None:
            values = fields.items.values() if isinstance(fields, Dict) and fields.complete else [None]
            parts.extend(v[0] if isinstance(v, tuple) and v else None for v in values)
        evidence = bool(self.hasobject)
        for part in parts:
            if not isinstance(part, Dtype) or part.hasobject is None:
                self.hasobject = None
                return
            evidence = evidence or part.hasobject
        self.hasobject = evidence if evidence == bool(flags & 1) else None


@dataclass
class Dict:
    """A dict the pickle built; complete while every key is a plain string."""

    items: dict[str, object] = field(default_factory=dict)
    complete: bool = True

    def set(self, key: object, value: object) -> None:
        if isinstance(key, str) and len(self.items) < 64:
            self.items[key] = value
        else:
            self.complete = False


@dataclass
class Wrapper:
    """A NumpyArrayWrapper created with no arguments (NEWOBJ), as joblib writes it."""


@dataclass(frozen=True)
class Layout:
    """What joblib.load reads right after the wrapper's BUILD."""

    nested_pickle: bool  # an array of objects: one complete pickle follows
    data_bytes: int = 0  # otherwise: the raw elements, after the padding
    max_padding: int = 0  # the padding-length byte may say at most this


def layout(state: object) -> Layout:
    """The bytes that follow a wrapper built with this state, or JoblibLayoutError."""
    if not isinstance(state, Dict) or not state.complete:
        raise JoblibLayoutError("joblib array wrapper with a state the scan cannot read")
    attrs = state.items
    dtype, shape = attrs.get("dtype"), attrs.get("shape")
    if not isinstance(dtype, Dtype) or dtype.hasobject is None:
        raise JoblibLayoutError("joblib array wrapper whose dtype the scan cannot read")
    if dtype.hasobject:
        return Layout(nested_pickle=True)
    if not (isinstance(shape, tuple)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise JoblibLayoutError(f"joblib array wrapper with an unreadable shape {shape!r}")
    if dtype.itemsize is None:
        raise JoblibLayoutError(f"joblib array wrapper with dtype {dtype.code!r} of unknown size")
    alignment = attrs.get("numpy_array_alignment_bytes")
    if not isinstance(alignment, int) or isinstance(alignment, bool) or not 1 <= alignment <= 255:
        # Without the padding (joblib < 1.2, or a dump into a stream that cannot tell its
        # position) the raw bytes follow the wrapper directly, and a plain pickle.load would
        # read them as opcodes: the scan cannot vouch for them.
        raise JoblibLayoutError("joblib array without alignment padding (joblib < 1.2, or dumped to an "
                                "unseekable stream); re-save it to a file with a current joblib")
    return Layout(nested_pickle=False, data_bytes=math.prod(shape) * dtype.itemsize, max_padding=alignment)
