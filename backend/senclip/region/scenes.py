"""What identifies one scene of a regional job (:class:`SceneRef`), for paths and STAC items alike.

Apart from sources.py so that stac.py, which sources.py calls for STAC documents, need not import its caller.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class SceneRef:
    """One scene of a regional job: where its pixels are and what identifies them.

    ``kind`` is ``"path"`` (``path`` is handed to the scene opener as is) or ``"stac"``
    (``assets`` maps blue/green/red[/nir] to hrefs; ``scl`` is the scene classification
    asset when the item has one). ``offset``/``scale`` come from STAC metadata (``radiometry``
    says by which rule, :mod:`.radiometry`) and replace the scene opener's ``auto`` only when the
    user left those at ``auto``. ``level`` is L1C/L2A when the item says; ``cloud_bands`` maps the
    bands s2cloudless reads to their assets, ``sun`` the item's sun angles; ``access`` what reading
    each asset needs (``role -> {asset, requester_pays, s3_endpoint}``, :mod:`.access`; which of them
    a run reads depends on its cloud mask). ``error`` is set for an item that cannot be mapped: it is recorded as
    failed, the other scenes go on.
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
    radiometry: dict | None = None
    level: str | None = None
    cloud_bands: dict = field(default_factory=dict)
    sun: dict | None = None
    access: dict = field(default_factory=dict)
    error: str | None = None

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
            d.update(assets=self.assets, scl=self.scl, offset=self.offset, scale=self.scale,
                     radiometry=self.radiometry, level=self.level, access=self.access)
        else:
            d["path"] = self.path
        return d


def safe_id(name: str) -> str:
    """A file-name-safe scene id (outputs are named after it)."""
    return _UNSAFE.sub("_", name).strip("._") or "scene"


def unique_ids(scenes: list[SceneRef]) -> list[SceneRef]:
    """Same scene twice (the same path or STAC item) counts once; different scenes that share a
    name get ``_2``, ``_3``... so their outputs never collide."""
    seen: dict[str, int] = {}
    keys: set = set()
    out = []
    for s in scenes:
        key = (s.kind, s.path and str(Path(s.path).resolve()), tuple(sorted(s.assets.items())), s.error and s.id)
        if key in keys:
            continue
        keys.add(key)
        n = seen.get(s.id, 0) + 1
        seen[s.id] = n
        if n > 1:
            s.id = f"{s.id}_{n}"
        out.append(s)
    return out
