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
        # A partial only binds arguments to a callable, which the scan classifies on its own
        # (HistGradientBoosting with categorical features pickles one around check_array).
        "functools.partial",
        "builtins.bytes",  # protocol 2 writes b"" as bytes()
        "builtins.object",  # protocols 0 and 1 rebuild objects with copyreg._reconstructor(cls, object, None)
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

# Known ways to run code, reach the OS or the network, or load more pickles: patterns on the
# whole "module.name". Wildcard allow patterns ("sklearn.*") trust whole packages, so the parts
# of those packages that run code, touch files or the network, or unpickle are listed here.
DENIED_PATTERNS: tuple[str, ...] = (
    # The standard library's process, file, network, import and introspection machinery.
    "os.*", "posix.*", "nt.*", "posixpath.*", "ntpath.*", "subprocess.*", "sys.*", "pty.*",
    "shutil.*", "socket.*", "ssl.*", "signal.*", "ctypes.*", "_ctypes.*", "cffi.*", "mmap.*",
    "importlib.*", "imp.*", "runpy.*", "pkgutil.*", "zipimport.*", "code.*", "codeop.*",
    "pdb.*", "bdb.*", "timeit.*", "profile.*", "cProfile.*", "trace.*", "webbrowser.*",
    "pydoc.*", "asyncio.*", "multiprocessing.*", "concurrent.*", "threading.*", "_thread.*",
    "pickle.*", "_pickle.*", "cPickle.*", "dill.*", "marshal.*", "shelve.*",
    "urllib.*", "urllib2.*", "http.*", "httplib.*", "requests.*", "ftplib.*", "smtplib.*",
    "telnetlib.*", "xmlrpc.*", "tempfile.*", "glob.*", "io.*", "_io.*", "fileinput.*",
    "gzip.*", "bz2.*", "lzma.*", "zipfile.*", "tarfile.*", "sqlite3.*", "dbm.*", "platform.*",
    "unittest.*", "doctest.*", "_pytest.*", "pytest.*", "logging.*", "atexit.*", "builtins.__*",
    *(f"{prefix}.{name}" for prefix in ("builtins", "__builtin__", "__builtins__") for name in _BUILTINS_DENIED),
    "argparse.*", "operator.methodcaller", "operator.attrgetter", "operator.itemgetter", "operator.call",
    "functools.reduce", "types.*", "inspect.*", "gc.*", "weakref.*",
    "copyreg.__newobj_ex__", "copy.*",
    # Code shipped as data: cloudpickle (any vendored copy) rebuilds functions from bytecode.
    "cloudpickle.*", "*.cloudpickle.*",
    # Test suites and test helpers of every package: they run scripts, pytest, subprocesses.
    "*.tests.*", "*.test.*", "*.testing.*", "*._testing.*", "*._testutils.*", "*.conftest.*",
    "*._pytesttester.*", "*.estimator_checks.*", "*._test_*", "*._tester.*", "*._precompute.*",
    # Vendored copies of other libraries (sklearn.externals.array_api_compat re-exports all of
    # numpy and torch, file functions included).
    "*.externals.*", "*._vendor.*", "*.array_api_compat.*",
    # scikit-learn: dataset fetchers and loaders (network, files, a cache folder, pickles),
    # module discovery (imports modules by name), callbacks (sockets and threads on load).
    "sklearn.datasets.*", "sklearn.utils.discovery.*", "sklearn.callback.*",
    "sklearn.utils._set_output.check_library_installed", "sklearn.tree._export.*",
    "sklearn.utils.parallel.*", "sklearn.utils._show_versions.*", "sklearn.utils.all_*",
    # joblib is caching, parallelism and file I/O: every part of it but the array wrapper its
    # own pickles reference (see _DENIED_EXCEPT).
    "joblib.*",
    # NumPy: file readers and writers, memory maps, pytest runners, compilers, C libraries.
    "numpy.lib.npyio.*", "numpy.lib._npyio_impl.*", "numpy.lib.format.*", "numpy.lib._format_impl.*",
    "numpy.lib._datasource.*", "numpy.f2py.*", "numpy.distutils.*", "numpy.ctypeslib.*",
    "numpy._core.memmap.*", "numpy.core.memmap.*", "numpy.matlib.*", "numpy.lib._utils_impl.*", "numpy.info",
    # (numpy.rec.array opens a file when given a path; _ufunc_reconstruct imports any module by name)
    "numpy.rec.array", "numpy._core.records.array", "numpy.core.records.array", "*._ufunc_reconstruct",
    "numpy._core._add_newdocs*", "numpy._core._methods._dump*",
    # SciPy: file formats, dataset downloads, C callbacks, and scipy.stats, whose distribution
    # objects exec() a code template taken from their own pickled state (rv_generic.__setstate__).
    # scipy._lib is private plumbing (vendored decorator, uarray's import-by-name unpickler, temp dirs);
    # scipy.odr deletes its report files.
    "scipy.io.*", "scipy.datasets.*", "scipy.misc.*", "scipy._lib.*", "scipy.stats.*", "scipy.odr.*",
    "scipy.sparse._matrix_io.*", "scipy.optimize._nonlin.*", "scipy.LowLevelCallable",
    "*._support_alternative_backends.*",
    # pandas: readers and writers, expression evaluation, plotting backends and optional
    # dependencies imported by name, options (set_option imports modules), the test runner.
    "pandas.read_*", "pandas.io.*", "pandas.eval", "pandas.core.computation.*", "pandas.plotting.*",
    "pandas.compat._optional.*", "pandas._config.*", "pandas.util._print_versions.*", "pandas.options",
    # PyTorch: loaders, hubs, compilers and code generators, process and network machinery.
    # (torch.storage._load_from_bytes, which plain pickles of tensors use, is torch.load with
    # weights_only=False on bytes inside the pickle: it is denied through its name.)
    "torch.load", "torch.hub.*", "torch.serialization.*", "torch.jit.*", "torch._C.*",
    "torch._jit_internal.*", "torch.ops.*", "torch._ops.*", "torch.fx.*", "torch.utils.cpp_extension.*",
    "torch._dynamo.*", "torch._inductor.*", "torch.package.*", "torch.export.*", "torch._export.*",
    "torch.onnx.*", "torch.distributed.*", "torch.multiprocessing.*", "torch.utils.data.*",
    "torch.utils.benchmark.*", "torch.utils.collect_env.*", "torch.utils.tensorboard.*",
    "torch.utils.hipify.*", "torch.utils._config_module.*", "torch.library.*", "torch.compiler.*",
    "torch.profiler.*", "torch.autograd.profiler*", "torch._library.*", "torch._higher_order_ops.*",
    "torch._functorch.*", "torch.ao.quantization.fx.*", "torch.ao.quantization.quantize_fx.*", "torch.ao.ns.*",
    "torch._import_utils.*", "torch.utils._pytree.*", "torch.utils.model_dump.*", "torch.utils.jit.*",
    "torch.utils._get_clean_triton.*", "torch.utils._cpp_embed_headers.*", "torch.utils._traceback.*",
    "torch.utils.viz.*", "torch.cuda.memory.*", "torch.xpu.memory.*", "torch.cuda._memory_viz.*",
    "torch.cuda.tunable.*", "torch.backends.xeon.*", "torch._strobelight.*", "torch._logging.*",
    "torch._custom_op*", "torch.nativert.*", "torch._preload*", "torch._utils._type", "torch.storage._type",
    "torch.set_default_tensor_type", "torch._utils._import_dotted_name",
    # pyarrow (pandas pickles of Arrow-backed columns name pyarrow.lib): file systems, file
    # formats, IPC, Flight (network), the JVM and C data bridges, CUDA, its C++ test runner.
    "pyarrow.fs.*", "pyarrow._fs.*", "pyarrow.*parquet*", "pyarrow.csv.*", "pyarrow._csv.*", "pyarrow.json.*",
    "pyarrow._json.*", "pyarrow.feather.*", "pyarrow._feather.*", "pyarrow.orc.*", "pyarrow._orc.*",
    "pyarrow.ipc.*", "pyarrow.dataset.*", "pyarrow._dataset*", "pyarrow.flight.*", "pyarrow._flight.*",
    "pyarrow.jvm.*", "pyarrow.cffi.*", "pyarrow.cuda.*", "pyarrow._cuda.*", "pyarrow._hdfs.*",
    "pyarrow._s3fs.*", "pyarrow._gcsfs.*", "pyarrow._azurefs.*", "pyarrow.substrait.*", "pyarrow._substrait.*",
    "pyarrow.acero.*", "pyarrow._acero.*", "pyarrow.benchmark.*", "pyarrow._pyarrow_cpp_tests.*",
    "pyarrow.lib.foreign_buffer", "pyarrow.lib._gdb_test_session",
    # Others: Keras lambdas, TensorFlow file I/O.
    "keras.*lambda*", "tensorflow.io.*", "tensorflow.python.ops.gen_io_ops.*",
)

# Globals denied by DENIED_PATTERNS that serialized data legitimately names: the wrapper joblib
# writes before each raw NumPy buffer, torch's layout lookup, and the array-API asarray that SciPy's
# BSpline objects keep (in every SplineTransformer), which is np.array with keyword checks. None
# reads, writes or runs anything.
_DENIED_EXCEPT: frozenset[str] = frozenset({
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "torch.serialization._get_layout",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
    "sklearn.externals.array_api_compat.numpy._aliases.asarray",
})

# Names denied wherever they live: libraries re-export them from other modules
# (`torch.serialization.os`, `sklearn.datasets._base.urlretrieve`, `scipy.test`), so the
# name itself is checked. Patterns on the last part of the name.
DENIED_NAMES: tuple[str, ...] = (
    # running code, importing modules, reaching attributes or raw memory
    "eval*", "exec*", "compile*", "*import*", "system", "popen", "*Popen*", "spawn*", "fork*",
    "call", "check_call", "check_output", "run", "getoutput", "getstatusoutput", "locate", "main",
    "methodcaller", "attrgetter", "getattr", "setattr", "delattr", "breakpoint", "set_trace",
    "interact", "as_strided", "FunctionMaker", "decorate", "LowLevelCallable", "CDLL", "*dlopen*",
    "__*__",  # a module's __dict__, __builtins__, __loader__ ... and every other dunder
    "test", "test_*", "pytest*", "Parallel", "Process", "Thread", "Pool", "*Executor*", "Timer",
    # changing process-wide state: registries, options, configuration
    "register*", "*safe_globals*", "*config_module*", "set_*", "option_context", "reset_option",
    "show_*", "*add_newdoc*",
    "*plot*", "*Plot*", "hist_*",  # pandas plotting imports the backend module named by its argument
    # loading other pickles and data files, reading and writing files
    "*load*", "*Unpickler*", "*Pickler*", "read_*", "write_*", "to_pickle", "*save*", "*dump*",
    "export*", "open*", "*open", "*file*", "*File*", "*Reader*", "*Writer*", "*Store*", "get_handle",
    "*memmap*", "*memory_map*", "*_stream", "DataSource", "fromregex", "genfromtxt", "Memory",
    "MemorizedFunc", "*Temporary*", "*mkdir*", "*makedirs*", "*mkdtemp*", "*mkstemp*", "rmtree",
    "rmdir", "remove", "unlink", "rename", "replace", "symlink", "link", "chmod", "chown", "truncate",
    "delete_folder", "rm_subdirs",
    # the network
    "*urlopen*", "urlretrieve", "*socket*", "*Socket*", "Client", "Listener", "*connect*",
    "fetch_*", "download*", "_download*",
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
        if fnmatchcase(full, pattern) and full not in _DENIED_EXCEPT:
            return Classification("denied", f"can run code, load data or reach files or the network "
                                            f"(denylist pattern {pattern!r})")
    last = name.rsplit(".", 1)[-1]
    for pattern in DENIED_NAMES:
        if fnmatchcase(last, pattern):
            return Classification("denied", f"can run code, load data or reach files or the network "
                                            f"(denied name pattern {pattern!r})")
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
