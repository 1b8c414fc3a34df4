"""``torch.save`` files read into numpy arrays without torch, by a restricted unpickler.

Why not ``torch.load``: the light install has no torch, and a checkpoint is data, never code.
A ``torch.save`` file is a pickle whose tensors point at raw storages (zip entries
``<archive>/data/<key>``, or, in the legacy non-zip format, blobs after the pickles). The
unpickler here resolves only the globals a state_dict needs (``collections.OrderedDict``, torch's
tensor rebuild functions and its typed storage classes, all mapped to our own numpy code) and
refuses every other one, so no callable from the file ever runs: a ``__reduce__`` calling
``os.system``, ``builtins.eval`` or a pickled class stop the load with :class:`UnsafeCheckpoint`.

The formats are torch's own (``torch/serialization.py``: ``_save`` / ``_legacy_save``); the
reading code is ours. TorchScript archives (OpenAI's original ``ViT-B-32.pt``) hold code and
are refused with a pointer to the plain weights.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?", "UntypedStorage": "u1",
}


class UnsafeCheckpoint(pickle.UnpicklingError):
    """The pickle names something besides a state_dict's data (a class, a function, code)."""


class UnsupportedTensor(pickle.UnpicklingError):
    """A tensor type a CLIP state_dict does not use (complex, quantised, sparse...)."""


class _Storage:
    """A storage class named in the pickle: only its element type matters."""

    def __init__(self, name: str):
        self.name, self.code = name, _STORAGE_DTYPES[name]

    @property
    def itemsize(self) -> int:
        return 2 if self.code == "bf16" else np.dtype(self.code).itemsize

    def array(self, raw: bytearray, little: bool) -> np.ndarray:
        """The storage's elements; bfloat16 (no numpy type) widened exactly to float32."""
        if self.code == "bf16":
            half = np.frombuffer(raw, dtype="<u2" if little else ">u2").astype(np.uint32)
            return (half << 16).view(np.float32)
        arr = np.frombuffer(raw, dtype=np.dtype(self.code).newbyteorder("<" if little else ">"))
        return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    """``torch._utils._rebuild_tensor_v2``'s job on a numpy storage: the strided view, copied
    unless it is the whole storage in order (then the storage's own writable buffer is used)."""
    if not isinstance(storage, np.ndarray):
        raise pickle.UnpicklingError(f"tensor built from {type(storage).__name__}, not a storage")
    size, stride, offset = tuple(int(s) for s in size), tuple(int(s) for s in stride), int(offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
        raise pickle.UnpicklingError(f"tensor with shape {size}, stride {stride}, offset {offset}")
    count = int(np.prod(size, dtype=np.int64))
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if count else offset - 1
    if last >= storage.size:
        raise pickle.UnpicklingError(f"tensor of shape {size} reaches past its storage of {storage.size} elements")
    if count == storage.size and offset == 0 and stride == _contiguous(size):
        return storage.reshape(size)
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[s * item for s in stride])
    return np.array(view, copy=True)


def _contiguous(size: tuple) -> tuple:
    stride, acc = [], 1
    for n in reversed(size):
        stride.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(stride))


def _rebuild_parameter(data, *_ignored):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED` and torch's storage names; storages come from ``load_storage``.
    With ``skim``, tensors are not built (the legacy format's first pass): globals are still checked."""

    def __init__(self, file, load_storage, skim: bool = False):
        super().__init__(file)
        self._load_storage, self._skim = load_storage, skim

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            found = _ALLOWED[(module, name)]
            return _skip if self._skim and found is not collections.OrderedDict else found
        if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
            return _Storage(name)
        if module == "torch" and name.endswith("Storage"):
            raise UnsupportedTensor(f"torch.{name}")
        raise UnsafeCheckpoint(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _Storage)):
            raise pickle.UnpicklingError(f"unexpected persistent id {str(pid)[:80]}")
        if self._load_storage is None:
            raise pickle.UnpicklingError("a storage where none belongs")
        return self._load_storage(pid)


def _skip(*_args):
    return None


def _check_storage(raw: bytes, kind: _Storage, numel, key) -> bytearray:
    if not isinstance(numel, int) or len(raw) != numel * kind.itemsize:
        raise pickle.UnpicklingError(f"storage {key} holds {len(raw)} bytes, not {numel} x {kind.itemsize}")
    return bytearray(raw)


def load_zip(zf: zipfile.ZipFile) -> object:
    """The object of a ``torch.save`` zip archive (``<name>/data.pkl`` + ``<name>/data/<key>``)."""
    names = zf.namelist()
    pkl = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise UnsafeCheckpoint("a TorchScript archive (a model's code, not only its weights)")
    if len(pkl) != 1:
        raise pickle.UnpicklingError("no <archive>/data.pkl: not a torch.save archive")
    root = pkl[0][: -len("data.pkl")]
    order = zf.read(root + "byteorder").decode().strip() if root + "byteorder" in names else "little"
    cache: dict = {}

    def storage(pid):
        _, kind, key, _location, numel = pid[:5]
        if key not in cache:
            raw = _check_storage(zf.read(f"{root}data/{key}"), kind, numel, key)
            cache[key] = kind.array(raw, order == "little")
        return cache[key]

    return _Unpickler(io.BytesIO(zf.read(pkl[0])), storage).load()


def load_legacy(data: bytes) -> object:
    """The object of a legacy (non-zip, ``_use_new_zipfile_serialization=False``) ``torch.save`` file:
    pickles of the magic number, protocol and system info, the object, its storage keys, then
    each storage as an int64 element count and its bytes. The storages follow the object, so the
    object is read twice: once to find where it ends (globals checked, nothing built), once with
    its storages."""
    f = io.BytesIO(data)
    magic, protocol, info = (_Unpickler(f, None).load() for _ in range(3))
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("not a torch.save file (wrong magic number or protocol)")
    little = info.get("little_endian", True) if isinstance(info, dict) else True
    start = f.tell()
    kinds: dict = {}
    _Unpickler(f, lambda pid: kinds.setdefault(pid[2], (pid[1], pid[4])) and None, skim=True).load()
    keys = _Unpickler(f, None).load()
    if not isinstance(keys, list) or set(keys) != set(kinds):
        raise pickle.UnpicklingError("the storage list does not match the tensors")
    storages = {}
    for key in keys:
        kind, numel = kinds[key]
        count = struct.unpack("<q" if little else ">q", f.read(8) or b"\0" * 8)[0]
        if count != numel:
            raise pickle.UnpicklingError(f"storage {key} holds {count} elements, not {numel}")
        storages[key] = kind.array(_check_storage(f.read(numel * kind.itemsize), kind, numel, key), little)
    f.seek(start)  # the object again, now with its storages (no copy of the file)
    return _Unpickler(f, lambda pid: _view(storages[pid[2]], pid)).load()


def _view(storage: np.ndarray, pid: tuple) -> np.ndarray:
    """A legacy storage, or the part of it a view id (``(key, offset, size)``, old torch) names."""
    view = pid[5] if len(pid) > 5 else None
    if view is None:
        return storage
    _key, offset, size = view
    return storage[int(offset):int(offset) + int(size)]
