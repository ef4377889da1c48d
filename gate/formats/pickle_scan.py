"""Static pickle scanning: walk the opcodes, collect every imported global, execute nothing.

The walker reads the stream front to back and never keeps a byte payload (tensor data
inlined as BINBYTES, say) in memory: payloads are skipped in chunks, so memory stays flat
whatever the file size. A tiny stack model follows strings through the memo so that
STACK_GLOBAL (protocol 4+) can be resolved the way the unpickler would resolve it.

Files written by joblib.dump hold raw NumPy data between opcodes; the walker reads them the
way joblib.load does (see gate/formats/joblib_arrays.py), and also follows what a plain
pickle.load of the same file would run.
"""

from __future__ import annotations

import _compat_pickle
import pickletools
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from gate.formats.joblib_arrays import WRAPPER, Dict, Dtype, JoblibLayoutError, Wrapper, layout

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
    # globals only a plain pickle.load of a joblib file imports (it numbers the memo of a nested
    # pickle differently); only denied ones matter, the others merely make pickle.load fail
    plain_globals: list[GlobalRef] = field(default_factory=list)
    joblib_arrays: int = 0  # NumPy arrays joblib.dump wrote outside the opcodes (raw or nested)
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
    if op.name in ("LONG1", "LONG4") and length <= 16:  # array shapes beyond 2**31
        return int.from_bytes(reader.read(length), "little", signed=True)
    reader.skip(length)
    return None


def _pop_to_mark(stack: list) -> None:
    while stack:
        if stack.pop() is _MARK:
            return
    raise PickleFormatError("MARK expected on the stack")


_INT_OPS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"}
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_TUPLE": ()}
_TUPLE_SIZES = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_MAX_TRACKED = 64  # longer tuples are never shapes or dtype states


class _Walk:
    """One pickle, opcode by opcode up to its STOP, on a simulated stack and memo.

    joblib: read array wrappers the way joblib.load does (only the outermost pickle; the
    nested pickle of an object array is read by a plain Unpickler). plain: this walk follows
    what a plain pickle.load runs, for the record only (see PickleScan.plain_globals).
    """

    def __init__(self, reader: _Reader, result: PickleScan, *, joblib: bool = False, plain: bool = False,
                 stack: list | None = None, memo: dict[int, object] | None = None) -> None:
        self.reader, self.result = reader, result
        self.joblib, self.plain = joblib, plain
        self.stack: list = stack if stack is not None else []
        self.memo: dict[int, object] = memo if memo is not None else {}
        self.protocol = 0  # until a PROTO opcode says otherwise
        self.plain_stopped = False  # a plain pickle.load of this file has stopped reading

    def run(self, first: bytes) -> None:
        code = first
        while True:
            op = _OPCODES.get(code)
            if op is None:
                raise PickleFormatError(f"unknown opcode {code!r} at byte {self.reader.pos - 1}")
            self.result.opcodes += 1
            arg = _read_arg(self.reader, op)
            if op.name == "STOP":
                if not self.stack or self.stack[-1] is _MARK:
                    raise PickleFormatError("STOP with no value on the stack")
                return
            self._step(op, arg)
            code = self.reader.read(1)

    def _global(self, ref: GlobalRef) -> None:
        (self.result.plain_globals if self.plain else self.result.globals).append(ref)

    def _step(self, op: pickletools.OpcodeInfo, arg: object) -> None:
        name, stack = op.name, self.stack
        if name == "PROTO":
            self.protocol = int(arg)
            self.result.protocol = max(self.result.protocol, self.protocol)
        elif name in ("GLOBAL", "INST"):
            module, qual = resolve_name(*arg, self.protocol)
            self._global(GlobalRef(module, qual, name))
            if name == "GLOBAL":
                stack.append(_Imported(f"{module}.{qual}"))
                return
        elif name == "STACK_GLOBAL":
            if len(stack) < 2:
                raise PickleFormatError("STACK_GLOBAL needs two values on the stack")
            qual, module = stack.pop(), stack.pop()
            if isinstance(module, str) and isinstance(qual, str):
                ref = GlobalRef(*resolve_name(module, qual, self.protocol), name)
                self._global(ref)
                stack.append(_Imported(ref.qualified))
            else:
                if not self.plain:  # pickle.load refuses names that are not strings
                    self.result.unresolved.append(f"STACK_GLOBAL at opcode {self.result.opcodes} "
                                                  "with computed operands")
                stack.append(_OPAQUE)
            return
        elif name in ("EXT1", "EXT2", "EXT4") and not self.plain:
            self.result.unresolved.append(f"{name} {arg}: global from the copyreg extension registry")
        if name in _STRING_OPS:
            stack.append(arg if isinstance(arg, str) else _OPAQUE)
        elif name in _INT_OPS:
            stack.append(arg if isinstance(arg, int) else _OPAQUE)
        elif name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            if not stack:
                raise PickleFormatError(f"{name} on an empty stack")
            self.memo[len(self.memo) if name == "MEMOIZE" else int(arg)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(self.memo.get(int(arg), _OPAQUE) if arg is not None else _OPAQUE)
        elif name == "DUP":
            if not stack:
                raise PickleFormatError("DUP on an empty stack")
            stack.append(stack[-1])
        elif name == "MARK":
            stack.append(_MARK)
        else:
            if name in _MUTATORS:
                _note_mutation(stack, name, self.result)
            self._apply(op)

    def _apply(self, op: pickletools.OpcodeInfo) -> None:
        """Opcodes that consume values; the few values the scan needs are rebuilt."""
        name, stack = op.name, self.stack
        if name in _TUPLE_SIZES and len(stack) >= _TUPLE_SIZES[name] and _MARK not in stack[-_TUPLE_SIZES[name]:]:
            items = tuple(stack[-_TUPLE_SIZES[name]:])
            del stack[-_TUPLE_SIZES[name]:]
            stack.append(items)
        elif name in ("TUPLE", "DICT"):
            items = _items_to_mark(stack)
            if name == "TUPLE":
                stack.append(tuple(items) if len(items) <= _MAX_TRACKED else _OPAQUE)
            else:
                built = Dict()
                for key, value in zip(items[::2], items[1::2]):
                    built.set(key, value)
                stack.append(built)
        elif name == "EMPTY_DICT":
            stack.append(Dict())
        elif name == "SETITEM" and len(stack) >= 3 and isinstance(stack[-3], Dict):
            stack[-3].set(stack[-2], stack[-1])
            del stack[-2:]
        elif name == "SETITEMS" and isinstance(_below_mark(stack), Dict):
            items = _items_to_mark(stack)
            for key, value in zip(items[::2], items[1::2]):
                stack[-1].set(key, value)
        elif name == "REDUCE" and len(stack) >= 2 and stack[-2] == _Imported("numpy.dtype") \
                and isinstance(stack[-1], tuple) and stack[-1] and isinstance(stack[-1][0], str):
            code = stack[-1][0]
            del stack[-2:]
            stack.append(Dtype.from_code(code))
        elif name == "NEWOBJ" and len(stack) >= 2 and stack[-2] == _Imported(WRAPPER) and stack[-1] == ():
            del stack[-2:]
            stack.append(Wrapper())
        elif name == "BUILD" and len(stack) >= 2 and isinstance(stack[-2], Dtype):
            stack[-2].set_state(stack.pop())
        elif name == "BUILD" and len(stack) >= 2 and isinstance(stack[-2], Wrapper) and self.joblib:
            state = stack.pop()
            stack[-1] = _OPAQUE  # joblib.load puts the array where the wrapper was
            self._joblib_array(state)
        else:
            _apply_stack_effect(stack, op)

    def _joblib_array(self, state: object) -> None:
        try:
            array = layout(state)
        except JoblibLayoutError as error:
            raise PickleFormatError(f"{error} (at byte {self.reader.pos})") from None
        self.result.joblib_arrays += 1
        if array.nested_pickle:
            if not self.plain_stopped:
                self._follow_plain_load()
            self.plain_stopped = True
            _Walk(self.reader, self.result).run(self.reader.read(1))
            return
        at = self.reader.pos
        padding = self.reader.read(1)
        # pickle.load reads this byte as an opcode: it must not be one, so that pickle.load
        # stops here instead of running the raw data as opcodes.
        if padding in _OPCODES:
            raise PickleFormatError(f"joblib padding length {padding[0]} at byte {at} is also a pickle opcode")
        if padding[0] > array.max_padding:
            raise PickleFormatError(f"joblib padding of {padding[0]} bytes at byte {at} exceeds the "
                                    f"{array.max_padding}-byte alignment")
        self.reader.skip(padding[0] + array.data_bytes)
        self.plain_stopped = True

    def _follow_plain_load(self) -> None:
        """pickle.load reads the nested pickle of the first object array with this pickle's stack
        and memo (and stops at its STOP): walk it that way too, then go back."""
        stream = self.reader.stream
        if not stream.seekable():
            raise PickleFormatError("joblib array of objects in a stream that cannot be read twice")
        offset, pos = stream.tell(), self.reader.pos
        shared = {key: _frozen(value) for key, value in self.memo.items()}
        plain = _Walk(self.reader, self.result, plain=True, stack=[_frozen(v) for v in self.stack], memo=shared)
        try:
            plain.run(self.reader.read(1))
        except PickleFormatError:
            pass  # pickle.load fails there too: nothing after it runs
        stream.seek(offset)
        self.reader.pos = pos


def _frozen(value: object) -> object:
    """What a walk that must not change this one's tracked values may see of a value."""
    return value if value is _MARK or isinstance(value, (str, int, _Imported)) else _OPAQUE


def _items_to_mark(stack: list) -> list:
    index = len(stack) - 1
    while index >= 0 and stack[index] is not _MARK:
        index -= 1
    if index < 0:
        raise PickleFormatError("MARK expected on the stack")
    items = stack[index + 1:]
    del stack[index:]
    return items


def _below_mark(stack: list) -> object:
    index = len(stack) - 1
    while index >= 0 and stack[index] is not _MARK:
        index -= 1
    return stack[index - 1] if index > 0 else None


def _note_mutation(stack: list, name: str, result: PickleScan) -> None:
    depth = _MUTATORS[name]
    target = _below_mark(stack) if depth is None else stack[-depth] if len(stack) >= depth else None
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
            _Walk(reader, result, joblib=True).run(first)
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
