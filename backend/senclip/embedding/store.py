"""The embedding store: image embeddings of one scene on the tile grid, computed once.

A folder holding ``embeddings.npy`` (rows × cols × D, float16; written and read with plain
positioned file I/O in row blocks, so a whole Sentinel-2 tile never sits in RAM and never
counts against the process's resident memory the way touched memory-mapped pages do), ``valid.npy`` (rows × cols, which cells were encoded)
and ``meta.json`` (model identity incl. checksum, preprocessing, radiometry, tiling, grid
georeferencing and the source fingerprint). Re-classifying with new prompts needs only this folder
and the text encoder of the same model, which :meth:`EmbeddingStore.check_model` enforces.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from senclip.core.errors import InputError, StoreMismatchError
from senclip.core.outputs import STORE_FORMAT as FORMAT
from senclip.core.outputs import Staged, check_replaceable, prepare_output
from senclip.core.stopping import deferred

VERSION = 1


class StoreWriter:
    """Writes into a hidden temporary folder beside ``path``; :meth:`commit` renames it.

    With ``overwrite`` only a store senclip wrote is replaced (:mod:`senclip.core.outputs`)."""

    def __init__(self, path, *, rows: int, cols: int, dim: int, meta: dict, overwrite: bool = False) -> None:
        self.path = prepare_output(path, overwrite, kind="store")
        self.overwrite = overwrite
        self.shape = (rows, cols, dim)
        self.valid = np.zeros((rows, cols), dtype=bool)
        self.meta = dict(meta, format=FORMAT, version=VERSION, rows=rows, cols=cols, dim=dim)
        self._fd, self.staged = None, None
        try:
            with deferred():  # the temporary's name is recorded before a stop can act
                self.staged = Staged(self.path, folder=True)
            self.tmp = self.staged.tmp
            emb = np.lib.format.open_memmap(self.tmp / "embeddings.npy", mode="w+", dtype=np.float16, shape=self.shape)
            del emb  # header written, file sized (sparse); cells are written with pwrite below
            self._fd = os.open(self.tmp / "embeddings.npy", os.O_RDWR | getattr(os, "O_BINARY", 0))
            self._offset = _data_offset(self.tmp / "embeddings.npy")
        except BaseException:  # a stop or a full disk while creating: remove what was created
            self.abort()
            raise

    def write(self, rs: np.ndarray, cs: np.ndarray, emb: np.ndarray) -> None:
        """Cells (rs[i], cs[i]) get emb[i]; runs of neighbouring cells go out in one write."""
        rs, cs = np.asarray(rs, dtype=np.int64), np.asarray(cs, dtype=np.int64)
        if len(rs) == 0:
            return
        rows, cols, dim = self.shape
        flat = rs * cols + cs
        order = np.argsort(flat, kind="stable")
        flat, data = flat[order], np.ascontiguousarray(np.asarray(emb)[order], dtype=np.float16)
        breaks = np.flatnonzero(np.diff(flat) != 1) + 1
        row_bytes = dim * 2
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(flat)]):
            _pwrite_all(self._fd, data[a:b].tobytes(), self._offset + int(flat[a]) * row_bytes)
        self.valid[rs, cs] = True

    def commit(self) -> Path:
        os.close(self._fd)
        self._fd = None
        np.save(self.tmp / "valid.npy", self.valid)
        (self.tmp / "meta.json").write_text(json.dumps(self.meta, indent=2), encoding="utf-8")
        check_replaceable(self.path, "store")  # again: the folder may have changed during the run
        return self.staged.commit()

    def abort(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None
        if self.staged is not None:
            self.staged.abort()


def _data_offset(path: Path) -> int:
    """Byte offset of the array data in an ``.npy`` file (after its header)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        if fortran or dtype != np.float16:
            raise ValueError(f"embeddings.npy must be C-ordered float16, found {dtype}")
        return f.tell()


def _seek_write(fd: int, data, offset: int) -> int:
    """``os.pwrite`` for platforms without it (Windows): seek, then write. The store's file
    descriptor is used by one thread only, so the two steps cannot interleave."""
    os.lseek(fd, offset, os.SEEK_SET)
    return os.write(fd, data)


def _choose_pwrite():
    return getattr(os, "pwrite", None) or _seek_write


_pwrite = _choose_pwrite()


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = _pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


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
        self._offset = self.embeddings.offset

    def read_rows(self, r0: int, r1: int) -> np.ndarray:
        """Embeddings of grid rows ``r0..r1`` (float16, (r1-r0, cols, D)) read from the file, not
        through the memory map: reading a whole store block by block keeps resident memory at one
        block instead of growing to the file's size."""
        rows, cols, dim = self.embeddings.shape
        r0, r1 = max(0, r0), min(rows, r1)
        n = max(0, r1 - r0) * cols * dim
        out = np.empty(n, dtype=np.float16)
        buf, got = memoryview(out).cast("B"), 0
        with open(self.path / "embeddings.npy", "rb", buffering=0) as f:
            f.seek(self._offset + r0 * cols * dim * 2)
            while got < n * 2:
                k = f.readinto(buf[got:])
                if not k:
                    break
                got += k
        if got != n * 2:
            raise InputError(f"embedding store {str(self.path)!r} is truncated; recreate it with 'senclip embed'")
        return out.reshape(max(0, r1 - r0), cols, dim)

    def iter_rows(self, block_rows: int = 32):
        """(r0, r1, embeddings of rows r0..r1) for the whole grid, in order."""
        rows = self.valid.shape[0]
        for r0 in range(0, rows, block_rows):
            yield r0, min(rows, r0 + block_rows), self.read_rows(r0, r0 + block_rows)

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
