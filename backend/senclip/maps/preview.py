"""A PNG a person can look at: the scene in true colour beside its class map, with a legend.

Random-weight runs get a banner saying so, so a smoke-test picture is never mistaken for a
result.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from senclip.core.outputs import Staged

FONT_CANDIDATES = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf", "Arial.ttf"]


def _font(size: int):
    from PIL import ImageFont

    for name in FONT_CANDIDATES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def draw_width(text: str, font) -> float:
    try:
        return font.getlength(text)
    except AttributeError:  # bitmap fallback font
        return 7 * len(text)


def _draw_legend(draw, x: int, y: int, cls, names, cloud_label, lut, font) -> None:
    """Class swatches with shares, as in the CLI summary and the dock: classes as shares of the
    cloud-free classified area, the cloud class as a share of the whole mapped area."""
    from senclip.maps.geotiff import CLOUD_VALUE

    counts = np.bincount(cls.ravel(), minlength=256)
    mapped = max(1, counts[1:].sum())
    classified = max(1, mapped - counts[CLOUD_VALUE])
    entries = [(i, name, classified) for i, name in enumerate(names[1:], start=1)]
    if cloud_label:
        entries.append((CLOUD_VALUE, f"{cloud_label}, of the mapped area", mapped))
    for i, name, whole in entries:
        draw.rectangle([x, y, x + 16, y + 16], fill=tuple(int(v) for v in lut[i]), outline="black")
        draw.text((x + 24, y), f"{name} ({100 * counts[i] / whole:.1f} %)", fill="black", font=font)
        y += 22


def render_preview(classmap, png, *, scene=None, max_side: int = 640) -> Path:
    """Write ``png`` from a class-map GeoTIFF; ``scene`` (an open :class:`~senclip.sentinel2.scene.Scene`
    of the same area) adds the true-colour panel."""
    import rasterio
    from PIL import Image, ImageDraw

    with rasterio.open(classmap) as ds:
        cls = ds.read(1)
        cmap = ds.colormap(1)
        tags = ds.tags()
        names = json.loads(ds.tags(1)["CLASS_NAMES"])
        cloud_label = ds.tags(1).get("CLOUD_LABEL")  # the map has the cloud / shadow class
    lut = np.zeros((256, 3), dtype=np.uint8)
    for k, rgba in cmap.items():
        lut[k] = rgba[:3]
    lut[0] = (255, 255, 255)
    font, small = _font(16), _font(13)
    panels = []
    f = max_side / max(cls.shape)  # grid-resolution maps are small: scale up as well as down
    size = (max(1, round(cls.shape[1] * f)), max(1, round(cls.shape[0] * f)))
    if scene is not None:
        step = max(1, int(np.ceil(max(scene.height, scene.width) / max_side)))
        dn, _ = scene.read(0, 0, scene.height, scene.width)
        rgb = scene.radiometry.to_uint8(dn[:, ::step, ::step])
        panels.append(Image.fromarray(np.moveaxis(rgb, 0, -1)).resize(size, Image.BILINEAR))
    panels.append(Image.fromarray(lut[cls]).resize(size, Image.NEAREST))
    longest = max([*names[1:], f"{cloud_label}, of the mapped area" if cloud_label else ""], key=len)
    legend_w = max(320, int(draw_width(f"{longest} (100.0 %)", small)) + 40)
    banner = 40 if "SENCLIP_WARNING" in tags else 0
    w = sum(p.width for p in panels) + 10 * len(panels) + legend_w
    if banner:
        w = max(w, int(draw_width(tags["SENCLIP_WARNING"], font)) + 20)
    h = max(max(p.height for p in panels), 30 + 22 * (len(names) + 1)) + banner + 40
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    x = 0
    for p in panels:
        img.paste(p, (x, banner + 30))
        x += p.width + 10
    title = f"SenCLIP class map - model {tags.get('SENCLIP_MODEL', '?')}"
    draw.text((8, banner + 6), title, fill="black", font=font)
    if banner:
        draw.rectangle([0, 0, w, banner - 4], fill=(200, 0, 0))
        draw.text((8, 10), tags["SENCLIP_WARNING"], fill="white", font=font)
    _draw_legend(draw, x, banner + 34, cls, names, cloud_label, lut, small)
    png = Path(png)
    with Staged(png, suffix=".tmp.png") as tmp:
        img.save(tmp)
    return png
