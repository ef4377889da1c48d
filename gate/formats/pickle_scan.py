"""Static pickle scanning: walk the opcodes, collect every imported global, execute nothing.

The walker reads the stream front to back and never keeps a byte payload (tensor data
inlined as BINBYTES, say) in memory: payloads are skipped in chunks, so memory stays flat
whatever the file size. A tiny stack model follows strings through the memo so that
STACK_GLOBAL (protocol 4+) can be resolved the way the unpickler would resolve it.
"""

from __future__ import annotations

import _compat_pickle
import pickletools
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

_OPCODES = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
_MARK = object()  # a MARK on the simulated stack
_OPAQUE = object()  # any value the scan does not need to know
_MAX_NAME = 4096  # module/qualname strings longer than this are never real imports
_MAX_LINE = 1 << 16
_SKIP_CHUNK = 1 << 20
_MAX_PICKLES = 16  # legacy torch files hold 5 pickles back to back

# Opcodes whose argument is a string the unpickler pushes (candidates for STACK_GLOBAL).
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
               "SHORT_BINSTRING"}
# Opcodes that change an object already on the stack, and how deep that object sits
# (None: just below the topmost MARK).
_MUTATORS = {"BUILD": 2, "APPEND": 2, "SETITEM": 3, "APPENDS": None, "SETITEMS": None, "ADDITEMS": None}


@dataclass(frozen=True)
class _Imported:
    """A value the unpickler got by importing a global (a class, function, module or singleton)."""

    qualified: str


def resolve_name(module: str, name: str, protocol: int) -> tuple[str, str]:
    """The names the unpickler really imports: below protocol 3 it maps Python 2 names
    (`__builtin__.eval`, `commands.check_output`) to their Python 3 homes."""
    if protocol < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return module, name


class PickleFormatError(ValueError):
    """The stream is not a well-formed pickle."""


@dataclass(frozen=True)
class GlobalRef:
    module: str
    name: str
    opcode: str  # GLOBAL, STACK_GLOBAL or INST

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass
class PickleScan:
    globals: list[GlobalRef] = field(default_factory=list)
    protocol: int = 0
    pickles: int = 0  # complete pickles found back to back
    opcodes: int = 0
    unresolved: list[str] = field(default_factory=list)  # globals whose name is built at run time
    # imported objects the pickle changes in place (BUILD or SETITEMS on a module, a singleton ...):
    # (global, what happens). The pickler only ever fills objects it has just created.
    mutated: list[tuple[str, str]] = field(default_factory=list)
    trailing_bytes: int = 0
    error: str | None = None  # set when the stream is malformed


class _Reader:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.pos = 0

    def read(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise PickleFormatError(f"truncated at byte {self.pos + len(data)}")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        while n > 0:
            chunk = self.stream.read(min(n, _SKIP_CHUNK))
            if not chunk:
                raise PickleFormatError(f"truncated at byte {self.pos}")
            n -= len(chunk)
            self.pos += len(chunk)

    def line(self) -> bytes | None:
        """One newline-terminated argument; None (after skipping it) when it is too long to matter."""
        data = self.stream.readline(_MAX_LINE)
        self.pos += len(data)
        if data.endswith(b"\n"):
            return data[:-1]
        if len(data) < _MAX_LINE:
            raise PickleFormatError(f"unterminated text argument at byte {self.pos}")
        while True:  # a long protocol-0 string: skip it without holding it
            data = self.stream.readline(_MAX_LINE)
            self.pos += len(data)
            if data.endswith(b"\n"):
                return None
            if len(data) < _MAX_LINE:
                raise PickleFormatError(f"unterminated text argument at byte {self.pos}")


def _read_arg(reader: _Reader, op: pickletools.OpcodeInfo) -> object:
    """Return the argument the scan needs (ints, short strings); skip everything else."""
    arg = op.arg
    if arg is None:
        return None
    name = arg.name
    if arg.n > 0:
        raw = reader.read(arg.n)
        if name in ("uint1", "uint2", "uint4", "uint8"):
            return int.from_bytes(raw, "little")
        if name == "int4":
            return struct.unpack("<i", raw)[0]
        return None
    if name == "stringnl_noescape_pair":
        module, qual = reader.line(), reader.line()
        if module is None or qual is None:
            raise PickleFormatError(f"global name longer than {_MAX_LINE} bytes at byte {reader.pos}")
        return module.decode("utf-8", "replace"), qual.decode("utf-8", "replace")
    if arg.n == pickletools.UP_TO_NEWLINE:
        text = reader.line()
        if text is None:
            return None
        if name == "stringnl":  # repr of a str, e.g. 'os'
            text = text.strip()
            if len(text) >= 2 and text[:1] == text[-1:] and text[:1] in (b"'", b'"'):
                text = text[1:-1]
            return text.decode("latin-1")
        if name == "unicodestringnl":
            return text.decode("raw-unicode-escape")
        if name in ("decimalnl_short", "decimalnl_long", "floatnl"):
            # The unpickler rejects malformed numbers; so do we (this keeps text files from
            # passing as protocol 0 pickles).
            digits = text.rstrip(b"L") if name == "decimalnl_long" else text
            try:
                return int(digits) if name != "floatnl" else float(digits)
            except ValueError:
                raise PickleFormatError(f"malformed number {text[:20]!r} at byte {reader.pos}") from None
        return None
    size_bytes = {pickletools.TAKEN_FROM_ARGUMENT1: 1, pickletools.TAKEN_FROM_ARGUMENT4: 4,
                  pickletools.TAKEN_FROM_ARGUMENT4U: 4, pickletools.TAKEN_FROM_ARGUMENT8U: 8}[arg.n]
    length = int.from_bytes(reader.read(size_bytes), "little", signed=arg.n == pickletools.TAKEN_FROM_ARGUMENT4)
    if length < 0:
        raise PickleFormatError(f"negative length at byte {reader.pos}")
    if op.name in _STRING_OPS and length <= _MAX_NAME:
        raw = reader.read(length)
        return raw.decode("utf-8", "replace") if "UNICODE" in op.name else raw.decode("latin-1")
    reader.skip(length)
    return None


def _pop_to_mark(stack: list) -> None:
    while stack:
        if stack.pop() is _MARK:
            return
    raise PickleFormatError("MARK expected on the stack")


def _scan_one(reader: _Reader, first: bytes, result: PickleScan) -> None:
    """Walk one pickle up to and including its STOP opcode."""
    stack: list = []
    memo: dict[int, object] = {}
    protocol = 0  # until a PROTO opcode says otherwise
    code = first
    while True:
        op = _OPCODES.get(code)
        if op is None:
            raise PickleFormatError(f"unknown opcode {code!r} at byte {reader.pos - 1}")
        result.opcodes += 1
        arg = _read_arg(reader, op)
        name = op.name
        if name == "STOP":
            if not stack or stack[-1] is _MARK:
                raise PickleFormatError("STOP with no value on the stack")
            return
        if name == "PROTO":
            protocol = int(arg)
            result.protocol = max(result.protocol, protocol)
        elif name in ("GLOBAL", "INST"):
            module, qual = resolve_name(*arg, protocol)
            result.globals.append(GlobalRef(module, qual, name))
            if name == "GLOBAL":
                stack.append(_Imported(f"{module}.{qual}"))
                code = reader.read(1)
                continue
        elif name == "STACK_GLOBAL":
            if len(stack) < 2:
                raise PickleFormatError("STACK_GLOBAL needs two values on the stack")
            qual, module = stack.pop(), stack.pop()
            if isinstance(module, str) and isinstance(qual, str):
                ref = GlobalRef(*resolve_name(module, qual, protocol), name)
                result.globals.append(ref)
                stack.append(_Imported(ref.qualified))
            else:
                result.unresolved.append(f"STACK_GLOBAL at opcode {result.opcodes} with computed operands")
                stack.append(_OPAQUE)
            code = reader.read(1)
            continue
        elif name in ("EXT1", "EXT2", "EXT4"):
            result.unresolved.append(f"{name} {arg}: global from the copyreg extension registry")
        if name in _STRING_OPS:
            stack.append(arg if isinstance(arg, str) else _OPAQUE)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            if not stack:
                raise PickleFormatError(f"{name} on an empty stack")
            memo[len(memo) if name == "MEMOIZE" else int(arg)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(int(arg), _OPAQUE) if arg is not None else _OPAQUE)
        elif name == "DUP":
            if not stack:
                raise PickleFormatError("DUP on an empty stack")
            stack.append(stack[-1])
        elif name == "MARK":
            stack.append(_MARK)
        else:
            if name in _MUTATORS:
                _note_mutation(stack, name, result)
            _apply_stack_effect(stack, op)
        code = reader.read(1)


def _note_mutation(stack: list, name: str, result: PickleScan) -> None:
    depth = _MUTATORS[name]
    if depth is None:  # walk back over the items the opcode consumes anyway: linear overall
        index = len(stack) - 1
        while index >= 0 and stack[index] is not _MARK:
            index -= 1
        target = stack[index - 1] if index > 0 else None
    else:
        target = stack[-depth] if len(stack) >= depth else None
    if isinstance(target, _Imported):
        result.mutated.append((target.qualified, f"{name} at opcode {result.opcodes}"))


def _apply_stack_effect(stack: list, op: pickletools.OpcodeInfo) -> None:
    before = op.stack_before
    if pickletools.stackslice in before:
        _pop_to_mark(stack)
        extra = before.index(pickletools.markobject)
    else:
        extra = len(before)
    if extra > len(stack):
        raise PickleFormatError(f"{op.name} needs {extra} values, the stack has {len(stack)}")
    del stack[len(stack) - extra:]
    stack.extend(_OPAQUE for _ in op.stack_after)


def scan_stream(stream: BinaryIO) -> PickleScan:
    """Scan pickles stored back to back from the stream's current position."""
    result = PickleScan()
    reader = _Reader(stream)
    first = stream.read(1)
    reader.pos = 1
    if not first:
        result.error = "empty stream"
        return result
    while True:
        end_of_last = reader.pos - 1
        try:
            _scan_one(reader, first, result)
            result.pickles += 1
        except PickleFormatError as error:
            if result.pickles == 0:
                result.error = str(error)
            else:  # bytes after a complete pickle that are not another pickle (legacy torch storages)
                result.trailing_bytes = reader.pos - end_of_last + _drain(stream)
            return result
        first = stream.read(1)
        reader.pos += len(first)
        if not first:
            return result
        # Only a PROTO opcode starts another pickle (legacy torch writes 5 in a row).
        if first != b"\x80" or result.pickles >= _MAX_PICKLES:
            result.trailing_bytes = 1 + _drain(stream)
            return result


def _drain(stream: BinaryIO) -> int:
    total = 0
    while chunk := stream.read(_SKIP_CHUNK):
        total += len(chunk)
    return total
