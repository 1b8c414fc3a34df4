"""Which scenes a regional job maps: paths, globs and folders in, :class:`SceneRef` s out.

A scene is anything ``senclip classify`` takes (a multi-band GeoTIFF/COG/VRT, a folder of band
files, a ``.SAFE`` folder or ``.SAFE.zip``; the scene opener decides how to read it), or a STAC
item (see :mod:`.stac`) whose band assets are stacked into a small GDAL VRT on the worker, so the
COGs behind it are read window by window over HTTP, never downloaded whole.
"""
from __future__ import annotations

import glob
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from senclip.core.errors import InputError
from senclip.sentinel2.product import _BAND, find_product, norm_band

PRODUCT_SUFFIXES = (".tif", ".tiff", ".vrt")
STAC_SUFFIXES = (".json", ".geojson")
_DATE = re.compile(r"(\d{8}T\d{6})")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class SceneRef:
    """One scene of a regional job: where its pixels are and what identifies them.

    ``kind`` is ``"path"`` (``path`` is handed to the scene opener as is) or ``"stac"``
    (``assets`` maps blue/green/red[/nir] to hrefs; ``scl`` is the scene classification
    asset when the item has one). ``offset``/``scale`` come from STAC metadata and replace the
    scene opener's ``auto`` only when the user left those at ``auto``.
    """

    id: str
    kind: str
    path: str | None = None
    assets: dict = field(default_factory=dict)
    scl: str | None = None
    datetime: str | None = None
    offset: float | None = None
    scale: float | None = None
    properties: dict = field(default_factory=dict)

    def fingerprint(self) -> dict:
        """What must be unchanged for a finished scene to be skipped on a rerun."""
        if self.kind == "stac":
            return {"id": self.id, "assets": dict(sorted(self.assets.items())), "datetime": self.datetime,
                    "updated": self.properties.get("updated"), "offset": self.offset, "scale": self.scale}
        p = Path(self.path)
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
        h = hashlib.sha256()
        for f in files:
            st = f.stat()
            h.update(f"{f.relative_to(p) if f != p else f.name}:{st.st_size}:{int(st.st_mtime)}\n".encode())
        return {"path": str(p.resolve()), "files": len(files), "stat_sha256": h.hexdigest()}

    def to_dict(self) -> dict:
        d = {"id": self.id, "kind": self.kind, "datetime": self.datetime}
        if self.kind == "stac":
            d.update(assets=self.assets, scl=self.scl, offset=self.offset, scale=self.scale)
        else:
            d["path"] = self.path
        return d


def safe_id(name: str) -> str:
    """A file-name-safe scene id (outputs are named after it)."""
    return _UNSAFE.sub("_", name).strip("._") or "scene"


def date_from_name(name: str) -> str | None:
    """The acquisition time in a Sentinel-2 file name (``..._20170216T102101_...``), ISO 8601."""
    m = _DATE.search(name)
    if not m:
        return None
    s = m.group(1)
    return f"{s[:4]}-{s[4:6]}-{s[6:8]}T{s[9:11]}:{s[11:13]}:{s[13:15]}Z"


def _stem(p: Path) -> str:
    name = p.name
    for suffix in (".zip", ".SAFE", ".safe", *PRODUCT_SUFFIXES, ".TIF", ".TIFF"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _is_band_folder(d: Path) -> bool:
    names = {norm_band(m.group(1)) for f in d.iterdir() if f.is_file() and (m := _BAND.search(f.name))}
    return {"B02", "B03", "B04"} <= names


def _has_bands_below(d: Path) -> bool:
    try:
        return {"B02", "B03", "B04"} <= set(find_product(d).bands)
    except InputError:
        return False


def _is_product(p: Path) -> bool:
    if p.name.startswith("."):
        return False
    if p.is_dir():
        return p.name.upper().endswith(".SAFE") or _is_band_folder(p)
    low = p.name.lower()
    return low.endswith(".safe.zip") or low.endswith(PRODUCT_SUFFIXES)


def _expand_dir(d: Path) -> list[Path]:
    if d.name.upper().endswith(".SAFE") or _is_band_folder(d):
        return [d]
    products = [c for c in sorted(d.iterdir()) if _is_product(c)]
    if products:
        return products
    if _has_bands_below(d):
        return [d]  # a granule tree (IMG_DATA somewhere below)
    raise InputError(f"no Sentinel-2 scenes found in folder {str(d)!r}: expected .SAFE folders, .SAFE.zip files, "
                     "GeoTIFF/COG files or folders of band files (*_B04.jp2)")


def _expand(arg: str) -> list[Path] | str:
    """Paths for one command-line argument, or the argument itself when it is a STAC document."""
    low = arg.lower()
    if low.startswith(("http://", "https://")):
        return arg
    if any(ch in arg for ch in "*?["):
        hits = [Path(h) for h in sorted(glob.glob(arg))]
        if not hits:
            raise InputError(f"the pattern {arg!r} matches no file; check the path (quote it so the shell does not expand it)")
        return [q for h in hits for q in (_expand_dir(h) if h.is_dir() else [h])]
    p = Path(arg)
    if not p.exists():
        raise InputError(f"input {arg!r} does not exist; give scene files or folders, a STAC JSON, or --stac URL")
    if p.is_dir():
        return _expand_dir(p)
    if low.endswith(STAC_SUFFIXES):
        return arg
    return [p]


def discover(inputs) -> list[SceneRef]:
    """Scenes of every input (paths, globs, folders, STAC JSON files or URLs), ids made unique."""
    from senclip.region import stac

    scenes: list[SceneRef] = []
    for arg in inputs:
        got = _expand(str(arg))
        if isinstance(got, str):
            scenes.extend(stac.load_static(got))
            continue
        for p in got:
            if p.name.lower().endswith(STAC_SUFFIXES):
                scenes.extend(stac.load_static(str(p)))
            else:
                scenes.append(SceneRef(id=safe_id(_stem(p)), kind="path", path=str(p), datetime=date_from_name(p.name)))
    return unique_ids(scenes)


def unique_ids(scenes: list[SceneRef]) -> list[SceneRef]:
    """Same scene twice (the same path or STAC item) counts once; different scenes that share a
    name get ``_2``, ``_3``... so their outputs never collide."""
    seen: dict[str, int] = {}
    keys: set = set()
    out = []
    for s in scenes:
        key = (s.kind, s.path and str(Path(s.path).resolve()), tuple(sorted(s.assets.items())))
        if key in keys:
            continue
        keys.add(key)
        n = seen.get(s.id, 0) + 1
        seen[s.id] = n
        if n > 1:
            s.id = f"{s.id}_{n}"
        out.append(s)
    return out
