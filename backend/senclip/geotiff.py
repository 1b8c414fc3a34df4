"""The class-map GeoTIFF: what a GIS user opens, styled and self-describing.

Band 1 is the class (uint8; 0 = nodata/unclassified, 1..K in the order given) with a colour
table and category names (in the ``.aux.xml`` GDAL reads with it); band 2 the top-1 probability and band 3 the margin to the runner-up,
both in percent. The file records the whole run in its tags, and a ``.qml`` sidecar makes QGIS
show class names. Everything is written under a temporary name and renamed at the end, so an
interrupted run never leaves a half-written map.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from .colors import class_colors
from .store import prepare_output

PROFILE = {"driver": "GTiff", "dtype": "uint8", "count": 3, "tiled": True, "blockxsize": 256,
           "blockysize": 256, "compress": "deflate", "predictor": 2, "interleave": "band", "BIGTIFF": "IF_SAFER"}
BAND_NAMES = ("class", "confidence (%)", "margin (%)")


def encode_probabilities(probs: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(K, h, w) probabilities + (h, w) validity → (3, h, w) uint8: class, confidence %, margin %."""
    out = np.zeros((3,) + valid.shape, dtype=np.uint8)
    if probs.shape[0] == 1:
        top1, second = probs[0], np.zeros_like(probs[0])
        cls = np.zeros(valid.shape, dtype=np.int64)
    else:
        order = np.argpartition(-probs, 1, axis=0)[:2]
        cls = order[0]
        top1 = np.take_along_axis(probs, order[:1], axis=0)[0]
        second = np.take_along_axis(probs, order[1:2], axis=0)[0]
    out[0] = np.where(valid, cls + 1, 0)
    out[1] = np.where(valid, np.clip(np.rint(top1 * 100), 0, 100), 0)
    out[2] = np.where(valid, np.clip(np.rint((top1 - second) * 100), 0, 100), 0)
    return out


def qml(classes: list[str], colors) -> str:
    """A QGIS paletted-renderer style with class names (QGIS loads ``<name>.qml`` by itself)."""
    entries = "\n".join(
        f'        <paletteEntry value="{i}" color="#{r:02x}{g:02x}{b:02x}" alpha="255" label="{escape(name, {chr(34): "&quot;"})}"/>'
        for i, (name, (r, g, b)) in enumerate(zip(classes, colors), start=1))
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def pam_xml(classes: list[str], colors) -> str:
    """GDAL's .aux.xml with the colour table and category names of band 1. A GeoTIFF can hold
    a palette only when it has a single band, and category names never: GDAL (and so QGIS,
    rasterio, ArcGIS) reads both from this sidecar."""
    cats = "".join(f"<Category>{escape(c)}</Category>" for c in ["unclassified", *classes])
    entries = ['<Entry c1="0" c2="0" c3="0" c4="0"/>']
    entries += [f'<Entry c1="{r}" c2="{g}" c3="{b}" c4="255"/>' for r, g, b in colors]
    entries += ['<Entry c1="0" c2="0" c3="0" c4="0"/>'] * (256 - len(entries))
    table = "".join(entries)
    return (f'<PAMDataset>\n  <PAMRasterBand band="1">\n    <ColorInterp>Palette</ColorInterp>\n'
            f"    <CategoryNames>{cats}</CategoryNames>\n    <ColorTable>{table}</ColorTable>\n"
            f"  </PAMRasterBand>\n</PAMDataset>\n")


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


class ClassMapWriter:
    """Stream a class map block by block; :meth:`commit` publishes it (tif, .aux.xml, .qml)."""

    def __init__(self, path, *, width: int, height: int, transform, crs, classes: list[str],
                 tags: dict, overwrite: bool = False) -> None:
        import rasterio

        self.path = prepare_output(path, overwrite)
        self.classes = classes
        self.colors = class_colors(classes)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=".tmp.tif")
        os.close(fd)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; the map is for others too
        self.tmp = Path(tmp)
        profile = dict(PROFILE, width=width, height=height, transform=transform, crs=crs, nodata=0)
        if width < 256 or height < 256:
            profile.update(tiled=False, blockxsize=None, blockysize=None)
            profile = {k: v for k, v in profile.items() if v is not None}
        self.ds = rasterio.open(self.tmp, "w", **profile)
        self.counts = np.zeros(len(classes) + 1, dtype=np.int64)
        self.conf_sum = np.zeros(len(classes) + 1, dtype=np.float64)
        for i, name in enumerate(BAND_NAMES, start=1):
            self.ds.set_band_description(i, name)
        self.ds.update_tags(**{k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()})
        self.ds.update_tags(1, CLASS_NAMES=json.dumps(["unclassified", *classes]))

    def write(self, window, probs: np.ndarray, valid: np.ndarray) -> None:
        bands = encode_probabilities(probs, valid)
        self.ds.write(bands, window=window)
        self.counts += np.bincount(bands[0].ravel(), minlength=len(self.counts))
        self.conf_sum += np.bincount(bands[0].ravel(), weights=bands[1].ravel(), minlength=len(self.counts))

    def commit(self) -> Path:
        self.ds.close()
        aux = Path(str(self.tmp) + ".aux.xml")
        aux.write_text(pam_xml(self.classes, self.colors), encoding="utf-8")
        style = qml(self.classes, self.colors)
        qml_tmp = self.tmp.with_suffix(".qml")
        qml_tmp.write_text(style, encoding="utf-8")
        os.replace(self.tmp, self.path)
        os.replace(aux, Path(str(self.path) + ".aux.xml"))
        os.replace(qml_tmp, self.path.with_suffix(".qml"))
        return self.path

    def abort(self) -> None:
        try:
            self.ds.close()
        finally:
            for p in (self.tmp, Path(str(self.tmp) + ".aux.xml"), self.tmp.with_suffix(".qml")):
                p.unlink(missing_ok=True)
