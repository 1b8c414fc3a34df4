"""The embedding store: image embeddings of one scene on the tile grid, computed once.

A folder holding ``embeddings.npy`` (rows × cols × D, float16, memory-mapped so a whole
Sentinel-2 tile never has to sit in RAM), ``valid.npy`` (rows × cols, which cells were encoded)
and ``meta.json`` (model identity incl. checksum, preprocessing, radiometry, tiling, grid
georeferencing and the source fingerprint). Re-classifying with new prompts needs only this folder
and the text encoder of the same model, which :meth:`EmbeddingStore.check_model` enforces.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import Cancelled, InputError, OutputError, StoreMismatchError

FORMAT = "senclip-embedding-store"
VERSION = 1


def prepare_output(path, overwrite: bool) -> Path:
    """Check an output path before any work is done, so a long run cannot fail at the end."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputError(f"output {str(p)!r} already exists; pass --overwrite or choose another path")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {str(p)!r}: folder {str(parent)!r} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".senclip-probe-"):
            pass
    except OSError as e:
        raise OutputError(f"cannot write to folder {str(parent)!r} ({e.strerror}); choose a writable output path") from None
    return p


@contextmanager
def all_or_nothing(writer):
    """Around the writing of an output: any failure, Ctrl-C included, removes the partial
    output (``writer.abort()``); the body ends with ``writer.commit()``."""
    try:
        yield writer
    except KeyboardInterrupt:
        writer.abort()
        raise Cancelled("interrupted; no output was written") from None
    except BaseException:
        writer.abort()
        raise


class StoreWriter:
    """Writes into a hidden temporary folder beside ``path``; :meth:`commit` renames it."""

    def __init__(self, path, *, rows: int, cols: int, dim: int, meta: dict, overwrite: bool = False) -> None:
        self.path = prepare_output(path, overwrite)
        self.overwrite = overwrite
        self.tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.tmp-"))
        self.emb = np.lib.format.open_memmap(self.tmp / "embeddings.npy", mode="w+", dtype=np.float16,
                                             shape=(rows, cols, dim))
        self.valid = np.zeros((rows, cols), dtype=bool)
        self.meta = dict(meta, format=FORMAT, version=VERSION, rows=rows, cols=cols, dim=dim)

    def write(self, rs: np.ndarray, cs: np.ndarray, emb: np.ndarray) -> None:
        self.emb[rs, cs] = emb.astype(np.float16)
        self.valid[rs, cs] = True

    def commit(self) -> Path:
        self.emb.flush()
        del self.emb
        np.save(self.tmp / "valid.npy", self.valid)
        (self.tmp / "meta.json").write_text(json.dumps(self.meta, indent=2), encoding="utf-8")
        if self.path.exists():
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        self.tmp.rename(self.path)
        return self.path

    def abort(self) -> None:
        if hasattr(self, "emb"):
            del self.emb
        shutil.rmtree(self.tmp, ignore_errors=True)


class EmbeddingStore:
    """Read side of a store folder."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        meta_f = self.path / "meta.json"
        if not meta_f.is_file():
            raise InputError(f"{str(self.path)!r} is not an embedding store (no meta.json); create one with 'senclip embed'")
        try:
            self.meta = json.loads(meta_f.read_text(encoding="utf-8"))
            if self.meta.get("format") != FORMAT:
                raise ValueError("wrong format tag")
            self.embeddings = np.load(self.path / "embeddings.npy", mmap_mode="r")
            self.valid = np.load(self.path / "valid.npy")
        except (ValueError, OSError, json.JSONDecodeError) as e:
            raise InputError(f"embedding store {str(self.path)!r} is damaged ({e}); recreate it with 'senclip embed'") from None
        if self.embeddings.shape[:2] != self.valid.shape:
            raise InputError(f"embedding store {str(self.path)!r} is inconsistent; recreate it with 'senclip embed'")

    @property
    def model(self) -> dict:
        return self.meta["model"]

    def check_model(self, record: dict) -> None:
        """Refuse a model other than the one the embeddings were made with: different weights
        mean a different embedding space, and the class map would be silently wrong."""
        mine = self.model
        for key in ("checksum", "arch", "embed_dim"):
            if mine.get(key) != record.get(key):
                raise StoreMismatchError(
                    f"embedding store {self.path.name} was made with model {mine.get('model_id')} "
                    f"({key}={mine.get(key)}), not {record.get('model_id')} ({key}={record.get(key)}); "
                    f"use --model/--checkpoint of the store's model or re-run 'senclip embed'")
