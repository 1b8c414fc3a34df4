"""The class-map GeoTIFF: what a GIS user opens, styled and self-describing.

Band 1 is the class (uint8; 0 = unclassified, 1..K in the order given) with a colour
table and category names (in the ``.aux.xml`` GDAL reads with it); band 2 the top-1 probability and band 3 the margin to the runner-up,
both in percent. Only unclassified cells are nodata: an internal mask (all bands) marks them, and
band 1 alone declares nodata 0 (in the ``.aux.xml``; a GeoTIFF can hold one nodata value for all
bands only, and 0 % margin, a tie, is a real value of band 3). The file records the whole run in
its tags, and a ``.qml`` sidecar makes QGIS show class names. Everything is written under a
temporary name and renamed at the end, so an interrupted run never leaves a half-written map.
"""
from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from rasterio.windows import Window

from senclip.core.colors import CLOUD_COLOR, class_colors
from senclip.core.outputs import Staged, check_replaceable, prepare_output, sidecars
from senclip.core import stopping
from senclip.core.stopping import deferred
from senclip.zeroshot.head import top_class

PROFILE = {"driver": "GTiff", "dtype": "uint8", "count": 3, "tiled": True, "blockxsize": 256,
           "blockysize": 256, "compress": "deflate", "predictor": 2, "interleave": "band", "BIGTIFF": "IF_SAFER"}
BAND_NAMES = ("class", "confidence (%)", "margin (%)")
# Class value of pixels masked as cloud or cloud shadow: apart from 0 (no data / unclassified) and
# from the land-cover classes 1..K (K < 255), so a reader can tell "not seen" from "not land cover".
CLOUD_VALUE = 255
CLOUD_LABEL = "cloud / shadow"
COUNT_CHUNK = 1 << 18  # pixels per class count: a block's counts need a few MB, not 16 bytes a pixel


def encode_probabilities(probs: np.ndarray, valid: np.ndarray, cloud: np.ndarray | None = None) -> np.ndarray:
    """(K, h, w) probabilities + (h, w) validity → (3, h, w) uint8: class, confidence %, margin %.
    Pixels in ``cloud`` (and not valid) get class :data:`CLOUD_VALUE` and no confidence. The class
    is :func:`~senclip.zeroshot.head.top_class`'s (a tie, to float rounding, goes to the class listed
    first, with a margin of 0)."""
    out = np.zeros((3,) + valid.shape, dtype=np.uint8)
    cls = top_class(probs, axis=0)
    top1 = np.take_along_axis(probs, cls[None], axis=0)[0]
    k = probs.shape[0]
    second = np.partition(probs, k - 2, axis=0)[k - 2] if k > 1 else np.zeros_like(top1)
    out[0] = np.where(valid, cls + 1, 0)
    out[1] = np.where(valid, np.clip(np.rint(top1 * 100), 0, 100), 0)
    out[2] = np.where(valid, np.clip(np.rint((top1 - second) * 100), 0, 100), 0)
    if cloud is not None:
        out[0][cloud & ~valid] = CLOUD_VALUE
    return out


def legend(classes: list[str], colors, cloud: bool = False) -> list[tuple[int, str, tuple[int, int, int]]]:
    """(value, label, colour) of every legend entry: the classes 1..K, then the cloud class."""
    items = [(i, name, tuple(c)) for i, (name, c) in enumerate(zip(classes, colors), start=1)]
    return items + ([(CLOUD_VALUE, CLOUD_LABEL, CLOUD_COLOR)] if cloud else [])


def qml(classes: list[str], colors, cloud: bool = False) -> str:
    """A QGIS paletted-renderer style with class names (QGIS loads ``<name>.qml`` by itself)."""
    entries = "\n".join(
        f'        <paletteEntry value="{i}" color="#{r:02x}{g:02x}{b:02x}" alpha="255" label="{escape(name, {chr(34): "&quot;"})}"/>'
        for i, name, (r, g, b) in legend(classes, colors, cloud))
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


def pam_xml(classes: list[str], colors, cloud: bool = False) -> str:
    """GDAL's .aux.xml with the colour table and category names of band 1. A GeoTIFF can hold
    a palette only when it has a single band, and category names never: GDAL (and so QGIS,
    rasterio, ArcGIS) reads both from this sidecar."""
    names = ["unclassified", *classes]
    if cloud:  # category names are positional: fill up to the cloud value
        names += [""] * (CLOUD_VALUE - len(names)) + [CLOUD_LABEL]
    cats = "".join(f"<Category>{escape(c)}</Category>" for c in names)
    entries = ['<Entry c1="0" c2="0" c3="0" c4="0"/>']
    entries += [f'<Entry c1="{r}" c2="{g}" c3="{b}" c4="255"/>' for r, g, b in colors]
    entries += ['<Entry c1="0" c2="0" c3="0" c4="0"/>'] * (256 - len(entries))
    if cloud:
        entries[CLOUD_VALUE] = '<Entry c1="{}" c2="{}" c3="{}" c4="255"/>'.format(*CLOUD_COLOR)
    table = "".join(entries)
    return (f'<PAMDataset>\n  <PAMRasterBand band="1">\n    <ColorInterp>Palette</ColorInterp>\n'
            f"    <NoDataValue>0</NoDataValue>\n"
            f"    <CategoryNames>{cats}</CategoryNames>\n    <ColorTable>{table}</ColorTable>\n"
            f"  </PAMRasterBand>\n</PAMDataset>\n")


class ClassMapWriter:
    """Stream a class map block by block; :meth:`commit` publishes it (tif, .aux.xml, .qml)."""

    def __init__(self, path, *, width: int, height: int, transform, crs, classes: list[str],
                 tags: dict, overwrite: bool = False, cloud: bool = False) -> None:
        self.path = prepare_output(path, overwrite, kind="classmap")
        self.classes = classes
        self.cloud = cloud  # a cloud mask was used: the legend gets the cloud class
        self.cloud_count = 0
        self.colors = class_colors(classes)
        self.counts = np.zeros(len(classes) + 1, dtype=np.int64)
        self.conf_sum = np.zeros(len(classes) + 1, dtype=np.float64)
        self.ds, self.staged, self.tmp = None, [], None
        try:
            with deferred():  # the temporary's name is recorded before a stop can act
                self.staged.append(Staged(self.path, suffix=".tmp.tif"))
            self.tmp = self.staged[0].tmp
            self._open(width, height, transform, crs, tags)
        except BaseException:  # a stop or a GDAL error while opening: remove what was created
            self.abort()
            raise

    def _open(self, width, height, transform, crs, tags) -> None:
        import rasterio

        profile = dict(PROFILE, width=width, height=height, transform=transform, crs=crs)
        if width < 256 or height < 256:
            profile.update(tiled=False, blockxsize=None, blockysize=None)
            profile = {k: v for k, v in profile.items() if v is not None}
        self.ds = rasterio.open(self.tmp, "w", **profile)
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):  # create the mask inside the tif, not as a .msk file
            self.ds.write_mask(np.zeros((1, 1), np.uint8), window=Window(0, 0, 1, 1))
        for i, name in enumerate(BAND_NAMES, start=1):
            self.ds.set_band_description(i, name)
        self.ds.update_tags(**{k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()})
        self.ds.update_tags(1, CLASS_NAMES=json.dumps(["unclassified", *self.classes]))
        if self.cloud:
            self.ds.update_tags(1, CLOUD_VALUE=str(CLOUD_VALUE), CLOUD_LABEL=CLOUD_LABEL)

    def write(self, window, probs: np.ndarray, valid: np.ndarray, cloud: np.ndarray | None = None) -> None:
        """(K, h, w) probabilities and (h, w) validity of ``window``; ``cloud`` marks masked cells."""
        self.write_bands(window, encode_probabilities(probs, valid, cloud))

    def write_bands(self, window, bands: np.ndarray) -> None:
        """(3, h, w) uint8 of :func:`encode_probabilities` (class 0 = unclassified)."""
        self.ds.write(bands, window=window)
        self.ds.write_mask(np.where(bands[0] > 0, np.uint8(255), np.uint8(0)), window=window)
        cls, conf = bands[0].reshape(-1), bands[1].reshape(-1)
        for a in range(0, len(cls), COUNT_CHUNK):  # bincount makes 8-byte copies: a chunk at a time
            hist = np.bincount(cls[a:a + COUNT_CHUNK], minlength=256)
            self.cloud_count += int(hist[CLOUD_VALUE])
            self.counts += hist[:len(self.counts)]
            self.conf_sum += np.bincount(cls[a:a + COUNT_CHUNK], weights=conf[a:a + COUNT_CHUNK],
                                         minlength=256)[:len(self.counts)]

    def _close(self) -> None:
        if self.ds is not None and not self.ds.closed:
            self.ds.close()

    def commit(self) -> Path:
        """Publish the map and its sidecars; an existing map is replaced only if senclip wrote it.
        Nothing is published after a stop signal, even one whose KeyboardInterrupt was swallowed
        inside a C callback (rasterio prints those and carries on)."""
        stopping.check()
        self._close()
        for side, text in zip(sidecars(self.path), (pam_xml(self.classes, self.colors, self.cloud),
                                                   qml(self.classes, self.colors, self.cloud))):
            self.staged.append(Staged(side))
            self.staged[-1].tmp.write_text(text, encoding="utf-8")
        check_replaceable(self.path, "classmap")  # again: the file may have changed during the run
        self._drop_gdal_leftovers()
        for st in self.staged:
            st.commit()
        return self.path

    def abort(self) -> None:
        try:
            self._close()
        finally:
            for st in self.staged:
                st.abort()
            self._drop_gdal_leftovers()

    def _drop_gdal_leftovers(self) -> None:
        """Files GDAL may put beside the temporary tif (statistics in PAM, an external mask)."""
        if self.tmp is None:
            return
        for p in (Path(str(self.tmp) + ".aux.xml"), Path(str(self.tmp) + ".msk")):
            p.unlink(missing_ok=True)
