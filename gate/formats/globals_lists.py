"""Which pickle globals a tensor checkpoint legitimately needs, and which are known to be dangerous.

Pure data and pure functions. A global is written "module.name" (the way pickle's GLOBAL and
STACK_GLOBAL opcodes name it). Patterns use shell-style wildcards (`fnmatch`), where `*` also
crosses dots, so "sklearn.*" covers every sklearn submodule.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

# Storage, dtype and rebuild helpers torch.save writes for plain tensors and parameters.
_TORCH_STORAGES = [
    f"torch.{kind}Storage"
    for kind in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
                 "ComplexFloat", "ComplexDouble", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4")
]
_TORCH_DTYPES = [
    f"torch.{name}"
    for name in ("float16", "float32", "float64", "bfloat16", "complex32", "complex64", "complex128",
                 "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
                 "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
                 "float4_e2m1fn_x2", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
                 "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
                 "per_channel_symmetric", "per_channel_affine_float_qparams", "strided", "sparse_coo")
]

DEFAULT_ALLOWED: frozenset[str] = frozenset(
    [
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_nested_tensor",
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_device_tensor_from_cpu_tensor",
        "torch._utils._rebuild_wrapper_subclass",
        "torch._tensor._rebuild_from_type_v2",
        "torch.serialization._get_layout",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.UntypedStorage",
        "torch.nn.parameter.Parameter",
        "torch.Tensor",
        "torch.Size",
        "torch.device",
        "collections.OrderedDict",
        "collections.Counter",
        "builtins.set",
        "builtins.frozenset",
        "builtins.slice",
        "builtins.complex",
        "builtins.bytearray",
        "__builtin__.set",
        "__builtin__.frozenset",
        "__builtin__.slice",
        "__builtin__.complex",
        "__builtin__.bytearray",
        "_codecs.encode",  # protocol 2 pickles write bytes as _codecs.encode(str, "latin1")
        "copyreg._reconstructor",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.ndarray",
        "numpy.dtype",
        *_TORCH_STORAGES,
        *_TORCH_DTYPES,
    ]
)

_BUILTINS_DENIED = (
    "eval", "exec", "execfile", "compile", "open", "file", "__import__", "getattr", "setattr", "delattr",
    "globals", "locals", "vars", "input", "raw_input", "breakpoint", "help", "exit", "quit", "memoryview",
    "type", "reload", "apply",
)

# Known ways to run code, reach the OS or the network, or load more pickles. Patterns.
DENIED_PATTERNS: tuple[str, ...] = (
    "os.*", "posix.*", "nt.*", "posixpath.*", "ntpath.*", "subprocess.*", "sys.*", "pty.*",
    "shutil.*", "socket.*", "ssl.*", "signal.*", "ctypes.*", "_ctypes.*", "cffi.*", "mmap.*",
    "importlib.*", "imp.*", "runpy.*", "pkgutil.*", "zipimport.*", "code.*", "codeop.*",
    "pdb.*", "bdb.*", "timeit.*", "profile.*", "cProfile.*", "trace.*", "webbrowser.*",
    "pydoc.*", "asyncio.*", "multiprocessing.*", "concurrent.*", "threading.*", "_thread.*",
    "pickle.*", "_pickle.*", "cPickle.*", "dill.*", "marshal.*", "shelve.*", "joblib.load",
    "urllib.*", "urllib2.*", "http.*", "httplib.*", "requests.*", "ftplib.*", "smtplib.*",
    "telnetlib.*", "xmlrpc.*", "tempfile.*", "glob.*", "io.*", "_io.*", "fileinput.*",
    *(f"{prefix}.{name}" for prefix in ("builtins", "__builtin__", "__builtins__") for name in _BUILTINS_DENIED),
    "operator.methodcaller", "operator.attrgetter", "operator.itemgetter", "operator.call",
    "functools.partial", "functools.reduce", "types.*", "inspect.*", "gc.*", "weakref.*",
    "copyreg.__newobj__ex__", "copy.*",
    "torch.load", "torch.hub.*", "torch.serialization.load", "torch.jit.*", "torch._C.*",
    "torch.ops.*", "torch._ops.*", "torch.fx.*", "torch.utils.cpp_extension.*",
    "torch._dynamo.*", "torch._inductor.*", "torch.package.*",
    "numpy.load", "numpy.loadtxt", "numpy.fromfile", "numpy.save", "numpy.testing.*",
    "numpy.f2py.*", "numpy.distutils.*", "numpy.ctypeslib.*", "numpy.lib.npyio.*", "numpy.lib._npyio_impl.*",
    "pandas.read_*", "pandas.io.*", "cloudpickle.cloudpickle._make_function",
    "cloudpickle.cloudpickle._builtin_type", "cloudpickle.cloudpickle.subimport",
    "cloudpickle.cloudpickle._make_skeleton_class", "cloudpickle.*._make_code",
    "keras.*lambda*", "tensorflow.io.*", "tensorflow.python.ops.gen_io_ops.*",
)

# Names that run code wherever they live (modules re-export them: `torch.serialization.os` ...).
DENIED_NAMES: frozenset[str] = frozenset(
    {"eval", "exec", "execfile", "compile", "__import__", "system", "popen", "getattr", "setattr",
     "delattr", "spawn", "spawnv", "spawnl", "execv", "execve", "execl", "call", "check_call",
     "check_output", "run", "Popen", "getoutput", "getstatusoutput", "locate", "methodcaller",
     "attrgetter", "load", "loads", "load_module", "import_module", "__reduce__", "__reduce_ex__",
     "__getattribute__", "__globals__", "__builtins__", "__subclasses__", "breakpoint", "open"}
)

Verdict = Literal["allowed", "denied", "unknown"]


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    reason: str


def classify_global(module: str, name: str, extra_allowed: tuple[str, ...] = ()) -> Classification:
    """Denylist first (it always wins), then the built-in allowlist, then the policy's patterns."""
    full = f"{module}.{name}"
    for pattern in DENIED_PATTERNS:
        if fnmatchcase(full, pattern):
            return Classification("denied", f"known dangerous callable (matches {pattern!r})")
    last = name.rsplit(".", 1)[-1]
    if last in DENIED_NAMES:
        return Classification("denied", f"name {last!r} can run code or load data")
    if "." in name:
        # Protocol 4 resolves dotted names attribute by attribute, so an allowed module's
        # imports (`torch._utils.os.system`) would be reachable; checkpoints never need this.
        return Classification("denied", "dotted name walks attributes of the module (pickle protocol 4)")
    if not module or not name or any(c.isspace() for c in full):
        return Classification("denied", "malformed module or name")
    if full in DEFAULT_ALLOWED:
        return Classification("allowed", "tensor checkpoint helper")
    for pattern in extra_allowed:
        if fnmatchcase(full, pattern):
            return Classification("allowed", f"allowed by policy pattern {pattern!r}")
    return Classification("unknown", "not on the allowlist of tensor checkpoint helpers")
