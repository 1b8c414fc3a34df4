"""Every file or folder senclip writes: checked before work, published whole, replaced only if ours.

Three rules for all outputs (class maps, embedding stores, previews, checkpoints, weights):

* :func:`prepare_output` checks a path before a long run starts, so the run cannot fail at the end
  for a reason known at the start (exists, folder missing, not writable).
* :class:`Staged` writes under a hidden temporary name beside the target and renames it into
  place, so no reader ever sees half a file and any stop leaves nothing (:func:`all_or_nothing`).
* ``--overwrite`` replaces only what senclip wrote: an embedding store (its ``meta.json`` says so
  and the folder holds nothing else), a class-map GeoTIFF (its tags say so) with its sidecars, an
  ONNX export folder (only senclip's two model files), or an empty folder. Anything else is
  refused and left untouched: a typo in ``--out`` must never cost someone's data. A new kind of
  output adds its recogniser to :data:`RECOGNISERS`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from senclip.core.errors import Cancelled, OutputError, Terminated
from senclip.core import stopping
from senclip.core.stopping import deferred

STORE_FORMAT = "senclip-embedding-store"
STORE_FILES = frozenset({"meta.json", "embeddings.npy", "valid.npy"})
CLASSMAP_TAG = "SENCLIP_VERSION"  # written into every class map's dataset tags
CLASSMAP_SIDECARS = (".aux.xml", ".qml")  # beside map.tif: map.tif.aux.xml and map.qml


def sidecars(path) -> list[Path]:
    """The files that belong to the class map ``path`` (GDAL's ``.aux.xml``, QGIS's ``.qml``)."""
    p = Path(path)
    return [Path(str(p) + ".aux.xml"), p.with_suffix(".qml")]


def _folder_of(path: Path, allowed: frozenset) -> set | None:
    """Names in the real folder ``path`` if all are plain files among ``allowed``, else None."""
    if not path.is_dir() or path.is_symlink():
        return None
    names = {c.name for c in path.iterdir()}
    if not names <= allowed or any(not (path / n).is_file() or (path / n).is_symlink() for n in names):
        return None
    return names


def is_senclip_store(path) -> bool:
    """A folder senclip wrote as an embedding store: a ``meta.json`` with senclip's format tag
    and no file a store does not have (a user's file inside means it is theirs now). An empty
    folder counts too: replacing it loses nothing."""
    p = Path(path)
    names = _folder_of(p, STORE_FILES)
    if names is None:
        return False
    if not names:
        return True
    if "meta.json" not in names:
        return False
    try:
        return json.loads((p / "meta.json").read_text(encoding="utf-8")).get("format") == STORE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def is_senclip_classmap(path) -> bool:
    """A GeoTIFF senclip wrote as a class map (recognised by its ``SENCLIP_VERSION`` tag)."""
    p = Path(path)
    if not p.is_file() or p.is_symlink():
        return False
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(p) as ds:
            return ds.driver == "GTiff" and CLASSMAP_TAG in ds.tags()
    except (RasterioIOError, OSError):
        return False


def is_senclip_onnx_export(path) -> bool:
    """A folder holding nothing but senclip's ONNX model files (or nothing at all)."""
    from senclip.models.onnx_export import IMAGE_FILE, TEXT_FILE

    return _folder_of(Path(path), frozenset({IMAGE_FILE, TEXT_FILE})) is not None


REPORT_FILES = frozenset({"accuracy.json", "confusion.csv", "classes.csv", "confusion.png", "report.html"})


def is_senclip_report(path) -> bool:
    """A folder senclip wrote as an accuracy report (only the report's own files, accuracy.json among them)."""
    names = _folder_of(Path(path), REPORT_FILES)
    return names is not None and (not names or is_senclip_json(Path(path) / "accuracy.json"))


MARK = "senclip"  # top-level member (senclip's version) of every JSON/GeoJSON file senclip writes
_JSON_LIMIT = 64 << 20  # bigger files are not read to recognise them


def marked(data: dict) -> dict:
    """``data`` with senclip's mark first, so that ``--overwrite`` can recognise the file later
    (GeoJSON allows foreign members; readers ignore it)."""
    from senclip._version import __version__

    return {MARK: __version__, **data}


def _json_object(path: Path):
    if not path.is_file() or path.is_symlink() or path.stat().st_size > _JSON_LIMIT:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def is_senclip_json(path) -> bool:
    """A JSON or GeoJSON file senclip wrote: a top-level object carrying :data:`MARK`."""
    data = _json_object(Path(path))
    return isinstance(data, dict) and MARK in data


def is_senclip_table(path) -> bool:
    """A CSV table senclip wrote: its first line is one of senclip's own headers."""
    from senclip.tools.change import TABLE_HEADER

    p = Path(path)
    if not p.is_file() or p.is_symlink():
        return False
    try:
        with open(p, encoding="utf-8", newline="") as f:
            return f.readline(4096).rstrip("\r\n") == ",".join(TABLE_HEADER)
    except (OSError, UnicodeDecodeError):
        return False


RECOGNISERS = {"store": (is_senclip_store, "an embedding store senclip wrote"),
               "json": (is_senclip_json, "a JSON file senclip wrote"),
               "table": (is_senclip_table, "a table senclip wrote"),
               "report": (is_senclip_report, "an accuracy report senclip wrote"),
               "classmap": (is_senclip_classmap, "a class map senclip wrote"),
               "onnx": (is_senclip_onnx_export, "an ONNX export senclip wrote")}


def check_replaceable(path, kind: str) -> None:
    """Raise :class:`OutputError` unless the existing ``path`` is an output of ``kind`` senclip wrote."""
    p = Path(path)
    recognise, what = RECOGNISERS[kind]
    if p.exists() and not recognise(p):
        raise OutputError(
            f"{str(p)!r} exists and is not {what}, so --overwrite will not replace it (nothing was touched); "
            f"choose another output path or move it away yourself")


def prepare_output(path, overwrite: bool, kind: str = "classmap") -> Path:
    """Check an output path before any work is done, so a long run cannot fail at the end.

    ``kind`` ("classmap" or "store") names what may be replaced with ``overwrite``."""
    p = Path(path)
    parts = [p] + (sidecars(p) if kind == "classmap" else [])
    existing = [q for q in parts if q.exists() or q.is_symlink()]
    if existing and not overwrite:
        raise OutputError(f"output {str(existing[0])!r} already exists; pass --overwrite or choose another path")
    if existing:
        if not (p.exists() or p.is_symlink()):  # sidecars of a map that is not there: not ours to judge
            raise OutputError(f"{str(existing[0])!r} exists without the map it belongs to, so --overwrite will "
                              f"not replace it (nothing was touched); choose another output path")
        check_replaceable(p, kind)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {str(p)!r}: folder {str(parent)!r} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".senclip-probe-"):
            pass
    except OSError as e:
        raise OutputError(f"cannot write to folder {str(parent)!r} ({e.strerror}); choose a writable output path") from None
    return p


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


class Staged:
    """A hidden temporary file (or folder) beside ``path`` that becomes ``path`` on :meth:`commit`
    and disappears on :meth:`abort`. Used as ``with Staged(path) as tmp: write(tmp)``: the body
    finishing publishes, any exception (Ctrl-C and SIGTERM included) removes the temporary.

    Temporary names are ``.<name>.<random><suffix>`` (files) and ``.<name>.tmp-<random>`` (folders),
    in the target's folder so that the final rename never crosses a file system."""

    def __init__(self, path, *, suffix: str = ".tmp", folder: bool = False) -> None:
        self.path = Path(path)
        self.folder = folder
        parent = self.path.parent
        with deferred():  # a stop now would leave a temporary whose name nobody knows
            if folder:
                self.tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self.path.name}.tmp-"))
            else:
                fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{self.path.name}.", suffix=suffix)
                os.close(fd)
                self.tmp = Path(tmp)
            # mkstemp/mkdtemp make 0600/0700; outputs are for other users and GIS servers too
            os.chmod(self.tmp, (0o777 if folder else 0o666) & ~current_umask())

    def commit(self) -> Path:
        """Rename the temporary to ``path``. An existing folder is moved aside first and removed
        after the rename, so at every moment either the old or the new output is complete.
        A stop received before (even one whose exception a library swallowed) publishes nothing."""
        stopping.check()
        if self.folder and self.path.is_dir() and not self.path.is_symlink():
            old = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.old-"))
            os.replace(self.path, old / "old")
            os.replace(self.tmp, self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self.folder:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()



def write_text(path, text: str) -> Path:
    """A small text file (JSON, VRT, CSV) written under a temporary name, then renamed: a reader
    never sees half a file, and a stop leaves nothing."""
    with Staged(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextmanager
def published_together():
    """Around a run that publishes several outputs one after another (a map, then its mask, table
    or examples). The body calls ``record(path, ...)`` for each file it has just published; if a
    later step fails or the run is stopped, exactly those files are removed again, so the run
    leaves all of its outputs or none, and never touches a file it did not write itself."""
    written: list[Path] = []
    try:
        yield lambda *paths: written.extend(Path(p) for p in paths)
    except BaseException:
        for p in reversed(written):
            p.unlink(missing_ok=True)
        raise


@contextmanager
def all_or_nothing(writer):
    """Around the writing of an output: any failure or stop (Ctrl-C, SIGTERM, cancel) removes the
    partial output (``writer.abort()``); the body ends with ``writer.commit()``.

    ``writer`` may be a function making the writer: then a stop while it is made is covered too
    (a writer whose construction fails removes what it had created itself)."""
    made = None
    try:
        made = writer() if callable(writer) else writer
        yield made
    except KeyboardInterrupt as e:  # Ctrl-C, and SIGTERM as :class:`Terminated`
        if made is not None:
            made.abort()
        raise Cancelled("interrupted; no output was written",
                        exit_code=Terminated.exit_code if isinstance(e, Terminated) else None) from None
    except BaseException:
        if made is not None:
            made.abort()
        raise
