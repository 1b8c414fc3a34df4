"""GDAL VRT files written with rasterio alone (no ``osgeo`` bindings, which pip's rasterio wheels
do not bring): a band stack for a STAC item's assets, and a mosaic view over class-map COGs."""
from __future__ import annotations

import os
from pathlib import Path
from xml.sax.saxutils import escape

from senclip.core.errors import InputError
from senclip.core.outputs import write_text

GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
              "int32": "Int32", "float32": "Float32", "float64": "Float64"}


def _header(width, height, crs, transform) -> str:
    gt = ", ".join(repr(float(v)) for v in transform.to_gdal())
    return (f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">\n'
            f"  <SRS>{escape(crs.to_wkt())}</SRS>\n  <GeoTransform>{gt}</GeoTransform>\n")


def _write(path: Path, text: str) -> Path:
    return write_text(path, text)


def stack_vrt(sources: list[str], path: Path, names: list[str]) -> Path:
    """One band per single-band source (all on one grid: Sentinel-2's 10 m bands are), band
    descriptions ``names``. Only headers are read, so remote COGs are not downloaded."""
    import rasterio

    infos = []
    for s in sources:
        try:
            with rasterio.open(s) as ds:
                infos.append((ds.width, ds.height, ds.transform, ds.crs, ds.dtypes[0], ds.nodata))
        except rasterio.errors.RasterioIOError as e:
            raise InputError(f"cannot read band asset {s} ({e})") from None
    w, h, t, crs, dtype, _ = infos[0]
    if any(i[:3] != (w, h, t) for i in infos):
        raise InputError(f"the band assets {', '.join(sources)} are not on one grid; choose the 10 m bands")
    body = []
    for i, (src, name, info) in enumerate(zip(sources, names, infos), start=1):
        nd = f"    <NoDataValue>{info[5]}</NoDataValue>\n" if info[5] is not None else ""
        body.append(f'  <VRTRasterBand dataType="{GDAL_TYPES[dtype]}" band="{i}">\n{nd}'
                    f"    <Description>{escape(name)}</Description>\n"
                    f'    <SimpleSource>\n      <SourceFilename relativeToVRT="0">{escape(src)}</SourceFilename>\n'
                    f"      <SourceBand>1</SourceBand>\n    </SimpleSource>\n  </VRTRasterBand>\n")
    return _write(Path(path), _header(w, h, crs, t) + "".join(body) + "</VRTDataset>\n")


def warped_vrt(src_path: Path, crs, path: Path) -> Path:
    """A map reprojected (nearest neighbour) into ``crs``, as a VRT file beside it."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.shutil import copy
    from rasterio.vrt import WarpedVRT

    with rasterio.open(src_path) as src, WarpedVRT(src, crs=crs, resampling=Resampling.nearest, nodata=0) as v:
        copy(v, path, driver="VRT")
    return path


def mosaic_vrt(sources: list[Path], path: Path, *, crs, transform, width: int, height: int,
               band_names) -> Path:
    """A VRT on the mosaic grid listing every source (all in ``crs``) in order: where they
    overlap, the last one listed shows. Source paths are relative to the VRT."""
    import rasterio

    res = transform.a
    bands = []
    for b, name in enumerate(band_names, start=1):
        parts = [f'  <VRTRasterBand dataType="Byte" band="{b}">\n    <NoDataValue>0</NoDataValue>\n'
                 f"    <Description>{escape(name)}</Description>\n"]
        for s in sources:
            with rasterio.open(s) as ds:
                t, sw, sh = ds.transform, ds.width, ds.height
            x, y = (t.c - transform.c) / res, (t.f - transform.f) / transform.e
            rel = os.path.relpath(s, Path(path).parent)
            parts.append(
                f'    <ComplexSource>\n      <SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename>\n'
                f"      <SourceBand>{b}</SourceBand>\n"
                f'      <SrcRect xOff="0" yOff="0" xSize="{sw}" ySize="{sh}"/>\n'
                f'      <DstRect xOff="{x:.6f}" yOff="{y:.6f}" xSize="{sw * t.a / res:.6f}" '
                f'ySize="{sh * t.e / transform.e:.6f}"/>\n      <NODATA>0</NODATA>\n    </ComplexSource>\n')
        bands.append("".join(parts) + "  </VRTRasterBand>\n")
    return _write(Path(path), _header(width, height, crs, transform) + "".join(bands) + "</VRTDataset>\n")
