"""How a STAC item's digital numbers become reflectance: the one rule, in one place.

The big catalogs say it in different ways, and one of them says two contradicting things:
Earth Search's ``sentinel-2-l2a`` items carry ``earthsearch:boa_offset_applied: true`` (its COGs
already hold DN + 1000 removed) while their ``raster:bands`` still declare ``offset: -0.1``;
applying that offset makes every reflectance 0.1 too low. So, per band asset, in this order:

1. an explicit "offset already applied" flag (:data:`APPLIED_FLAGS`) set true wins: offset 0;
   the scale still comes from the raster metadata (else 1/10000);
2. STAC 1.1 raster fields on the asset (``raster:scale`` / ``raster:offset``, CDSE) or on its
   single band (``bands[0]["raster:scale"]``);
3. STAC 1.0 ``raster:bands[0]`` ``scale`` / ``offset`` (Earth Search, older catalogs); raster
   metadata with a scale but no offset leaves the offset to the next rule;
4. the processing baseline (``s2:processing_baseline``, ``processing:version``, or ``_N0510_`` in
   the product name: ``s2:product_uri``, Earth Search v0's ``sentinel:product_id``, the item id):
   04.00 or later means -1000 DN, earlier 0 (Planetary Computer's items carry no raster metadata);
5. nothing known: offset 0, 10000 DN per unit, said so in the record.

The result is a DN offset and DNs per unit reflectance, ``refl = (DN + offset) / scale`` (the
scene reader's :class:`senclip.sentinel2.scene.Radiometry`). It is handed to the scene reader explicitly,
so the reader's own guess from product names never adds a second offset: applied once, here.
"""
from __future__ import annotations

import re

from senclip.core.errors import InputError
from senclip.sentinel2.product import NEW_BASELINE, NEW_BASELINE_OFFSET

# Item properties that say the catalog's files already have the offset removed.
APPLIED_FLAGS = ("earthsearch:boa_offset_applied",)
DEFAULT_SCALE = 10000.0  # DN per unit reflectance of every Sentinel-2 product
_BASELINE_IN_NAME = re.compile(r"_N(\d\d)(\d\d)(?:_|$)")


def _float(v):
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def raster_scale_offset(asset: dict) -> tuple[float | None, float | None, str | None]:
    """(scale, offset, where) of the asset's raster metadata: reflectance = DN * scale + offset."""
    bands = asset.get("bands") or []
    one = bands[0] if len(bands) == 1 and isinstance(bands[0], dict) else {}
    for where, d, s, o in (("raster:scale/raster:offset (STAC 1.1 asset)", asset, "raster:scale", "raster:offset"),
                           ("bands[].raster:scale/raster:offset (STAC 1.1)", one, "raster:scale", "raster:offset")):
        if _float(d.get(s)) or _float(d.get(o)) is not None:
            return _float(d.get(s)), _float(d.get(o)), where
    rb = asset.get("raster:bands") or []
    if rb and isinstance(rb[0], dict) and (_float(rb[0].get("scale")) or _float(rb[0].get("offset")) is not None):
        return _float(rb[0].get("scale")), _float(rb[0].get("offset")), "raster:bands (STAC 1.0)"
    return None, None, None


def baseline(props: dict, item_id: str = "") -> tuple[int, int] | None:
    """The processing baseline (major, minor) from the item's properties or product name."""
    for key in ("s2:processing_baseline", "processing:version"):
        m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(props.get(key) or ""))
        if m:
            return int(m.group(1)), int(m.group(2))
    for name in (props.get("s2:product_uri"), props.get("s2:granule_id"), props.get("sentinel:product_id"), item_id):
        m = _BASELINE_IN_NAME.search(str(name or ""))
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def band_rule(asset: dict, props: dict, item_id: str = "") -> dict:
    """The radiometry of one band asset: ``{"offset", "scale", "rule"}`` (DN offset, DN per unit)."""
    scale, offset, where = raster_scale_offset(asset)
    dn_per_unit = 1.0 / scale if scale else DEFAULT_SCALE
    flag = next((f for f in APPLIED_FLAGS if props.get(f) is True), None)
    if flag:
        return {"offset": 0.0, "scale": round(dn_per_unit, 6), "rule": f"{flag}: true (offset already applied"
                f"{'; ' + where + ' offset ignored' if offset else ''})"}
    if where is not None and offset is not None:
        return {"offset": round(offset * dn_per_unit, 6), "scale": round(dn_per_unit, 6), "rule": where}
    bl = baseline(props, item_id)
    if bl is not None:  # also for raster metadata that gives a scale but says nothing of the offset
        off = NEW_BASELINE_OFFSET if bl >= NEW_BASELINE else 0.0
        return {"offset": off, "scale": round(dn_per_unit, 6),
                "rule": (f"{where} scale, " if where else "") + f"processing baseline {bl[0]:02d}.{bl[1]:02d}"}
    return {"offset": 0.0, "scale": round(dn_per_unit, 6),
            "rule": "no offset found (no raster offset, offset flag or processing baseline): offset 0 assumed"}


def item_radiometry(item_id: str, assets: dict[str, dict], props: dict) -> dict:
    """One radiometry for the item's R, G, B assets (``role -> asset dict``); an item whose bands
    disagree is refused, since the scene reader applies one offset and scale to all three."""
    rules = {role: band_rule(a, props, item_id) for role, a in assets.items()}
    values = {(r["offset"], r["scale"]) for r in rules.values()}
    if len(values) > 1:
        said = ", ".join(f"{role}: offset {r['offset']}, scale {r['scale']}" for role, r in rules.items())
        raise InputError(f"STAC item {item_id!r}: its bands declare different radiometry ({said}); "
                         "give --offset and --scale")
    return next(iter(rules.values()))
