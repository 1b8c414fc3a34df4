"""The Sen2LUCAS layout: Sentinel-2 chips paired with four frozen ground-photo embeddings.

Naming convention (the one the reference loader parses): the list file holds one chip path per
line, relative to the data root, as ``{CC}/{POINTID}[_anything].tif`` — the first folder is the
two-letter country code, the file name starts with the LUCAS point id, and anything after the
first ``_`` is ignored (e.g. ``DE/40123456_2018.tif``). The embeddings file is a
``torch.save``'d dict keyed ``"{CC}_{POINTID}{D}"`` (D in W, E, N, S), each a (1, D) tensor.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from senclip.core.errors import InputError

DIRECTIONS = ("W", "E", "N", "S")  # the reference's stacking order
_CC = re.compile(r"^[A-Za-z]{2}$")


def chip_key(rel_path: str) -> str:
    """``DE/40123456_2018.tif`` → ``DE_40123456``; raises :class:`InputError` when the path does
    not follow the convention (so a wrong list file fails before training, not at step 10 000)."""
    parts = Path(rel_path.strip()).parts
    if len(parts) < 2 or not _CC.match(parts[0]):
        raise InputError(f"chip path {rel_path!r} does not follow {{CC}}/{{POINTID}}[_...].tif "
                         "(country-code folder first); fix the list file")
    point = Path(parts[-1]).stem.split("_")[0]
    if not point.isdigit():
        raise InputError(f"chip path {rel_path!r}: file name must start with the numeric LUCAS point id")
    return f"{parts[0].upper()}_{point}"


def read_list(list_file: str | Path) -> list[str]:
    p = Path(list_file)
    if not p.is_file():
        raise InputError(f"chip list {p} does not exist; pass --list with a text file of relative chip paths")
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"chip list {p} is empty; it must hold one relative chip path per line")
    return lines


def load_embeddings(path: str | Path) -> dict:
    """The frozen ground embeddings, loaded safely (``weights_only=True``)."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise InputError(f"ground embeddings file {p} does not exist; make it with `senclip-train embed-ground`")
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure here means "not a usable file"
        raise InputError(f"ground embeddings file {p} cannot be loaded ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else ''}); it is corrupt or not a torch.save'd dict") from None
    if not isinstance(obj, dict) or not obj:
        raise InputError(f"ground embeddings file {p} holds {type(obj).__name__}, not a non-empty dict of tensors")
    return obj


def _as_row(key: str, t, dim: int | None):
    import torch

    if not isinstance(t, torch.Tensor) or t.dim() not in (1, 2) or (t.dim() == 2 and t.shape[0] != 1):
        raise InputError(f"ground embedding {key!r} must be a (1, D) tensor, got "
                         f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    t = t.reshape(1, -1).float()
    if dim is not None and t.shape[1] != dim:
        raise InputError(f"ground embedding {key!r} has D={t.shape[1]} but the others have D={dim}; "
                         "all four views must come from the same CLIP")
    return t


class Sen2LucasDataset:
    """Items are ``(ground (4, D) float tensor, chip tensor (3, S, S))``.

    Indexed by ``(index, seed)`` tuples (see :class:`~senclip_train.data.sampler.ResumableBatchSampler`),
    so augmentation is a function of the sample and epoch only. Every chip's four keys are
    checked at construction: a missing key is an error naming it, before any training starts.
    """

    def __init__(self, root, list_file, embeddings, *, transform, bands=(3, 2, 1), chip_size: int | None = 100):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"data root {self.root} is not a folder; pass --root with the Sen2LUCAS folder")
        self.paths = read_list(list_file)
        self.keys = [chip_key(p) for p in self.paths]
        self.emb = load_embeddings(embeddings) if not isinstance(embeddings, dict) else embeddings
        missing = [f"{k}{d}" for k in self.keys for d in DIRECTIONS if f"{k}{d}" not in self.emb]
        if missing:
            raise InputError(f"ground embedding {missing[0]!r} is missing ({len(missing)} key(s) missing in all, "
                             f"for chip {self.paths[self.keys.index(missing[0][:-1])]!r}); recompute the embeddings "
                             "with `senclip-train embed-ground` or drop those chips from the list")
        first = next(iter(self.emb))
        self.dim = _as_row(first, self.emb[first], None).shape[1]
        self.transform = transform
        self.bands = tuple(bands)
        self.chip_size = chip_size

    def __len__(self) -> int:
        return len(self.paths)

    def ground(self, index: int):
        import torch

        k = self.keys[index]
        return torch.cat([_as_row(f"{k}{d}", self.emb[f"{k}{d}"], self.dim) for d in DIRECTIONS], dim=0)

    def chip(self, index: int) -> np.ndarray:
        """The 8-bit RGB chip (3, H, W), size-checked."""
        from .preprocess import minmax_to_uint8, read_rgb

        path = self.root / self.paths[index]
        arr = read_rgb(path, self.bands)
        h, w = arr.shape[1:]
        if self.chip_size and (h, w) != (self.chip_size, self.chip_size):
            raise InputError(f"chip {path} is {w}×{h} px but Sen2LUCAS chips are {self.chip_size}×{self.chip_size}; "
                             "fix the data or pass --chip-size 0 to accept any size")
        if min(h, w) < self.transform.crop:
            raise InputError(f"chip {path} is {w}×{h} px, smaller than the {self.transform.crop} px centre crop")
        return minmax_to_uint8(arr)

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, 0)
        return self.ground(index), self.transform(self.chip(index), seed)
