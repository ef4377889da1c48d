"""Look at every file of a model: its real format, safetensors validity, pickle globals.

Nothing is loaded or executed. The result is plain data; gate/formats/decide.py turns it
into a verdict under a policy.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

from gate.formats.detect import Detection, detect
from gate.formats.globals_lists import classify_global
from gate.formats.pickle_scan import PickleScan, scan_stream
from gate.formats.safetensors_check import DEFAULT_MAX_HEADER, validate_safetensors
from gate.formats.shards import is_index, read_index, validate_safetensors_index

PICKLE_BEARING = ("pickle", "pytorch-zip", "numpy", "numpy-npz", "zip")


@dataclass
class Finding:
    file: str
    global_name: str
    verdict: str  # denied | unknown | unresolved | code
    reason: str
    member: str | None = None  # the archive entry holding the pickle

    @property
    def where(self) -> str:
        return f"{self.file}:{self.member}" if self.member else self.file

    def message(self) -> str:
        return f"{self.where}: {self.global_name}: {self.verdict} ({self.reason})"


@dataclass
class FileReport:
    path: str  # posix, relative to the scanned root
    format: str
    detail: str = ""
    size: int = 0
    has_pickle: bool = False  # some pickle stream was found (and scanned)
    errors: list[str] = field(default_factory=list)  # the file is invalid
    warnings: list[str] = field(default_factory=list)
    globals: list[str] = field(default_factory=list)  # every global imported, allowed or not
    findings: list[Finding] = field(default_factory=list)  # globals that are not allowed

    def to_dict(self) -> dict:
        return asdict(self)


def iter_files(root: Path) -> Iterator[Path]:
    """Every file under root in a stable order; directory symlinks are not followed."""
    if root.is_file() or root.is_symlink() and not root.is_dir():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name


def inspect_tree(root: Path, *, allow_globals: tuple[str, ...] = (),
                 max_header: int = DEFAULT_MAX_HEADER) -> list[FileReport]:
    root_real = root.resolve()
    base = root.parent if root.is_file() else root
    reports: dict[str, FileReport] = {}
    paths: dict[str, Path] = {}
    for path in iter_files(root):
        rel = path.relative_to(base).as_posix()
        paths[rel] = path
        reports[rel] = inspect_file(path, rel, root_real if root.is_dir() else None,
                                    allow_globals=allow_globals, max_header=max_header)
    _check_indexes(reports, paths, max_header)
    return list(reports.values())


def inspect_file(path: Path, rel: str, root_real: Path | None, *, allow_globals: tuple[str, ...] = (),
                 max_header: int = DEFAULT_MAX_HEADER) -> FileReport:
    if path.is_symlink():
        target = path.resolve()
        if root_real is not None and not target.is_relative_to(root_real):
            return FileReport(rel, "unknown", errors=["symlink points outside the model folder"])
        if not target.is_file():
            return FileReport(rel, "unknown", errors=["symlink to a missing file or a non-file"])
    try:
        detection = detect(path)
        report = FileReport(rel, detection.format, detection.detail, path.stat().st_size)
        _examine(path, detection, report, allow_globals, max_header)
    except OSError as error:
        return FileReport(rel, "unknown", errors=[f"cannot read: {error.strerror or error}"])
    return report


def _examine(path: Path, detection: Detection, report: FileReport, allow_globals: tuple[str, ...],
             max_header: int) -> None:
    fmt = detection.format
    if fmt == "git-lfs-pointer":
        report.errors.append(f"this is a git-lfs pointer, not weights ({detection.detail}); "
                             "fetch the real file with `git lfs pull`")
    elif fmt == "safetensors":
        report.errors.extend(validate_safetensors(path, max_header).errors)
    elif fmt == "pickle":
        with path.open("rb") as stream:
            _add_scan(report, scan_stream(stream), None, allow_globals)
    elif fmt == "numpy":
        with path.open("rb") as stream:
            _scan_npy(stream, report, None, allow_globals)
    elif fmt in ("pytorch-zip", "numpy-npz", "zip"):
        _scan_zip(path, report, allow_globals)
    elif fmt == "compressed":
        # joblib.load decompresses and unpickles such a file; scanning it would mean inflating it.
        report.errors.append(f"unsupported: compressed ({detection.detail}): joblib.load would decompress and "
                             "unpickle it, and the scan does not decompress; save it with joblib.dump(..., compress=0)")


def _add_scan(report: FileReport, scan: PickleScan, member: str | None, allow_globals: tuple[str, ...]) -> None:
    where = f"{member}: " if member else ""
    report.has_pickle = True
    if scan.error:
        report.errors.append(f"{where}malformed pickle: {scan.error}")
    if scan.trailing_bytes:
        report.warnings.append(f"{where}{scan.trailing_bytes} bytes after the last pickle")
    seen: set[str] = set()
    for ref in scan.globals:
        if ref.qualified in seen:
            continue
        seen.add(ref.qualified)
        report.globals.append(ref.qualified)
        verdict = classify_global(ref.module, ref.name, allow_globals)
        if verdict.verdict != "allowed":
            report.findings.append(Finding(report.path, ref.qualified, verdict.verdict, verdict.reason, member))
    for ref in dict.fromkeys(scan.plain_globals):
        verdict = classify_global(ref.module, ref.name, allow_globals)
        if verdict.verdict == "denied" and ref.qualified not in seen:
            seen.add(ref.qualified)
            report.findings.append(Finding(report.path, ref.qualified, "denied",
                                           f"{verdict.reason}; imported when pickle.load (not joblib.load) "
                                           "reads this joblib file", member))
    if scan.joblib_arrays:
        report.detail = f"{report.detail}, joblib.dump with {scan.joblib_arrays} NumPy array(s) outside the opcodes"
    first_change = {}  # one finding per object, at its first change
    for qualified, how in scan.mutated:
        first_change.setdefault(qualified, how)
    for qualified, how in first_change.items():
        report.findings.append(Finding(report.path, qualified, "denied",
                                       f"{how} changes the imported object in place (a pickler only fills "
                                       "objects it has just created; this patches a module or a shared object)",
                                       member))
    for text in scan.unresolved:
        report.findings.append(Finding(report.path, "(computed)", "unresolved",
                                       f"{text}; the imported name is only known when it runs", member))


def _scan_npy(stream: BinaryIO, report: FileReport, member: str | None, allow_globals: tuple[str, ...]) -> None:
    """An .npy of object dtype stores a pickle after its header; plain arrays hold no code."""
    import numpy.lib.format as npformat

    where = f"{member}: " if member else ""
    try:
        version = npformat.read_magic(stream)
        header = (npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0)(stream)
    except (ValueError, OSError) as error:
        report.errors.append(f"{where}invalid .npy header: {error}")
        return
    if header[2].hasobject:
        _add_scan(report, scan_stream(stream), member, allow_globals)


def _scan_zip(path: Path, report: FileReport, allow_globals: tuple[str, ...]) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        report.errors.append(f"unreadable zip archive: {error}")
        return
    with archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir():
                continue
            if report.format == "pytorch-zip" and ("/code/" in name or name.endswith(".py")):
                report.findings.append(Finding(report.path, name, "code",
                                               "TorchScript archive: torch.jit.load runs its Python code"))
                continue
            try:
                with archive.open(info) as stream:
                    if name.endswith(".npy"):
                        _scan_npy(stream, report, name, allow_globals)
                        continue
                    head = stream.read(2)
                # torch unpickles only the .pkl entries; its data/ entries are raw bytes that may
                # start like a pickle by chance. Other archives: anything that starts like one.
                sniffed = report.format != "pytorch-zip" and len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5
                if name.endswith(".pkl") or sniffed:
                    with archive.open(info) as stream:
                        _add_scan(report, scan_stream(stream), name, allow_globals)
            except (zipfile.BadZipFile, NotImplementedError, OSError) as error:
                report.errors.append(f"{name}: unreadable archive entry: {error}")


def _check_indexes(reports: dict[str, FileReport], paths: dict[str, Path], max_header: int) -> None:
    referenced: set[str] = set()
    unreferenced: dict[str, list[str]] = {}
    for rel, report in reports.items():
        path = paths[rel]
        if report.format != "text" or not is_index(path):
            continue
        report.detail = "shard index"
        if path.name.endswith(".safetensors.index.json"):
            def names(shard: Path) -> set[str] | None:
                info = validate_safetensors(shard, max_header)
                return None if info.errors else set(info.tensors)
            check = validate_safetensors_index(path, names)
        else:
            check = read_index(path)
            check.errors.extend(f"shard {s!r} named in the index does not exist"
                                for s in check.shards if not (path.parent / s).is_file())
        report.errors.extend(check.errors)
        prefix = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
        referenced.update(prefix + s for s in check.shards)
        unreferenced[rel] = [prefix + s for s in check.unreferenced]
    for rel, shards in unreferenced.items():
        for shard in shards:
            if shard not in referenced:
                reports[rel].warnings.append(f"shard {shard!r} is not referenced by any index")
