"""End to end through the API with the colour stand-in encoder: geometry, nodata, store, cancel."""
from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from s2data import write_s2

import senclip
from senclip.maps import classmap
from senclip.core.errors import Cancelled, InputError, StoreMismatchError
from senclip.core.feedback import Feedback

CLASSES = "green meadow;blue water"


@pytest.mark.numeric
def test_grid_output_georeferenced_and_correct(s2_scene, tmp_path, color_model):
    out = tmp_path / "map.tif"
    res = senclip.classify(s2_scene, out, classes=CLASSES, loaded_model=color_model)
    with rasterio.open(s2_scene) as src, rasterio.open(out) as ds:
        assert ds.crs == src.crs
        assert ds.transform == src.transform * src.transform.scale(32)
        assert ds.shape == (3, 5)  # ceil(96/32), ceil(160/32)
        assert ds.count == 3 and ds.dtypes == ("uint8",) * 3
        cls = ds.read(1)
        assert (cls[:, :2] == 1).all() and (cls[:, 3:] == 2).all()
        # the middle column's chips are half green, half blue: an exact tie goes to the class
        # listed first, with a margin of 0 %, and is a classified cell, not nodata
        assert (cls[:, 2] == 1).all() and (ds.read(3)[:, 2] == 0).all()
        assert ds.nodatavals == (0, None, None) and (ds.read_masks(3) == 255).all()
        conf = ds.read(2)
        assert conf[0, 0] > 90 and ds.read(3)[0, 0] > 80
        assert ds.colormap(1)[1][:3] != ds.colormap(1)[2][:3]
        tags = ds.tags()
        assert json.loads(tags["SENCLIP_CLASSES"]) == ["green meadow", "blue water"]
        assert tags["SENCLIP_MODEL"] == "test:color" and tags["SENCLIP_CHECKSUM_SHA256"] == "color-v1"
        assert json.loads(tags["SENCLIP_TILING"])["tile"] == 64
        assert json.loads(tags["SENCLIP_VERSIONS"])["gdal"] == rasterio.__gdal_version__
    assert "green meadow" in (tmp_path / "map.qml").read_text()
    assert "<Category>blue water</Category>" in (tmp_path / "map.tif.aux.xml").read_text()
    assert res.counts["green meadow"] == 9 and res.area_m2["green meadow"] == pytest.approx(9 * 320 * 320)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.qml", "map.tif", "map.tif.aux.xml", "scene.tif"]


@pytest.mark.numeric
def test_pixel_resolution_follows_the_input_grid(tmp_path, color_model):
    scene = write_s2(tmp_path / "s.tif", nodata_border=8)
    out = tmp_path / "px.tif"
    senclip.classify(scene, out, classes=CLASSES, loaded_model=color_model, resolution="pixel")
    with rasterio.open(scene) as src, rasterio.open(out) as ds:
        assert ds.transform == src.transform and ds.shape == src.shape
        cls = ds.read(1)
    assert (cls[:8] == 0).all() and (cls[:, -8:] == 0).all()  # nodata border stays nodata
    assert (cls[16:-16, 16:60] == 1).all() and (cls[16:-16, 100:-16] == 2).all()
    assert (cls[8:-8, 8:-8] > 0).mean() > 0.97  # only corners lack a chip with enough valid pixels


@pytest.mark.numeric
@pytest.mark.parametrize("budget", [1, 40_000])
def test_pixel_output_is_the_same_for_any_memory_budget(tmp_path, color_model, monkeypatch, budget):
    """Blocks sized by the memory budget (1 byte: one pixel row per block; 40 kB: a few rows)
    give the same map as the default budget (one block here)."""
    scene = write_s2(tmp_path / "s.tif", width=200, height=150, nodata_border=5)
    senclip.classify(scene, tmp_path / "a.tif", classes=CLASSES, loaded_model=color_model, resolution="pixel")
    blocks = []
    real = classmap.block_rows
    monkeypatch.setattr(classmap, "MEMORY_BUDGET", budget)
    monkeypatch.setattr(classmap, "block_rows", lambda *a, **k: blocks.append(real(*a, **k)) or blocks[-1])
    senclip.classify(scene, tmp_path / "b.tif", classes=CLASSES, loaded_model=color_model, resolution="pixel")
    assert 1 <= blocks[0] < 150 and (blocks[0] == 1) == (budget == 1)
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert np.array_equal(a.read(), b.read()) and np.array_equal(a.read_masks(), b.read_masks())


def test_mostly_nodata_tiles_are_unclassified_not_guessed(tmp_path, color_model):
    scene = write_s2(tmp_path / "s.tif", nodata_border=20, nodata=0)
    senclip.classify(scene, tmp_path / "m.tif", classes=CLASSES, loaded_model=color_model)
    with rasterio.open(tmp_path / "m.tif") as ds:
        cls = ds.read(1)
        mask = ds.read_masks(2)
    assert cls[0, 0] == 0 and cls[-1, -1] == 0 and cls[1, 1] == 1
    assert mask[0, 0] == 0 and mask[1, 1] == 255  # unclassified cells are nodata in every band


@pytest.mark.parametrize("bands", [13, 4, 3])
def test_default_band_mapping_by_band_count(tmp_path, color_model, bands):
    scene = write_s2(tmp_path / "s.tif", bands=bands)
    # cloud_mask none: the made-up 13-band stack has every other band, B10 (cirrus) included, at a flat
    # reflectance of 0.1, which s2cloudless rightly calls cloud everywhere; this test is about bands.
    res = senclip.classify(scene, tmp_path / "m.tif", classes=CLASSES, loaded_model=color_model, cloud_mask="none")
    assert res.counts["green meadow"] > 0 and res.counts["blue water"] > 0


@pytest.mark.numeric
def test_explicit_bands_swap_colours(s2_scene, tmp_path, color_model):
    # The 4-band file is B02,B03,B04,B08 (blue, green, red, NIR); the default RGB is B04,B03,B02.
    # --bands 2,1,3 reads R=B03 (green), G=B02 (blue), B=B04 (red): the green left half reads red,
    # the blue right half reads green, and nothing reads blue.
    res = senclip.classify(s2_scene, tmp_path / "m.tif", classes="red roof;green meadow;blue water",
                           loaded_model=color_model, bands="2,1,3")
    default = senclip.classify(s2_scene, tmp_path / "d.tif", classes="red roof;green meadow;blue water",
                               loaded_model=color_model)
    assert default.counts == {"red roof": 0, "green meadow": 9, "blue water": 6}
    assert res.counts == {"red roof": 9, "green meadow": 6, "blue water": 0}


def test_folder_of_band_files(tmp_path, color_model):
    src = write_s2(tmp_path / "s.tif", bands=4)
    folder = tmp_path / "IMG_DATA"
    folder.mkdir()
    with rasterio.open(src) as ds:
        prof = dict(ds.profile, count=1)
        for i, name in enumerate(["B02", "B03", "B04", "B08"], start=1):
            with rasterio.open(folder / f"T33UUU_20170216T102101_{name}.tif", "w", **prof) as dst:
                dst.write(ds.read(i), 1)
    a = senclip.classify(folder, tmp_path / "f.tif", classes=CLASSES, loaded_model=color_model)
    b = senclip.classify(src, tmp_path / "g.tif", classes=CLASSES, loaded_model=color_model)
    assert a.counts == b.counts


@pytest.mark.numeric
def test_store_reclassifies_without_encoding(s2_scene, tmp_path, color_model):
    senclip.embed(s2_scene, tmp_path / "store", loaded_model=color_model)
    calls = color_model.image.calls
    res = senclip.classify_store(tmp_path / "store", tmp_path / "m.tif", classes="blue water;green meadow",
                                 loaded_model=color_model)
    assert color_model.image.calls == calls  # no image encoding
    assert res.counts["blue water"] >= 6 and sum(res.counts.values()) == 15
    direct = senclip.classify(s2_scene, tmp_path / "d.tif", classes="blue water;green meadow", loaded_model=color_model)
    assert direct.counts == res.counts


def test_store_refuses_another_model(s2_scene, tmp_path, color_model):
    from dataclasses import replace

    senclip.embed(s2_scene, tmp_path / "store", loaded_model=color_model)
    other = replace(color_model, model_id="other", checksum="different")
    with pytest.raises(StoreMismatchError, match="was made with model test:color"):
        senclip.classify_store(tmp_path / "store", tmp_path / "m.tif", classes=CLASSES, loaded_model=other)
    assert not (tmp_path / "m.tif").exists()


def test_column_mean_calibration_is_recorded(s2_scene, tmp_path, color_model):
    senclip.classify(s2_scene, tmp_path / "m.tif", classes=CLASSES, loaded_model=color_model, calibrate="column-mean")
    with rasterio.open(tmp_path / "m.tif") as ds:
        assert ds.tags()["SENCLIP_CALIBRATE"] == "column-mean"


def test_bounds_and_mask_restrict_the_work(s2_scene, tmp_path, color_model):
    # right half only (x from 330800 m): everything is blue water
    res = senclip.classify(s2_scene, tmp_path / "b.tif", classes=CLASSES, loaded_model=color_model,
                           bounds=(330800, 5821040, 331600, 5822000))
    assert res.counts["green meadow"] == 0 and res.counts["blue water"] > 0
    mask = tmp_path / "mask.geojson"
    poly = [[330000, 5822000], [330600, 5822000], [330600, 5821040], [330000, 5821040], [330000, 5822000]]
    mask.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},
                                "features": [{"type": "Feature", "properties": {},
                                              "geometry": {"type": "Polygon", "coordinates": [poly]}}]}))
    res = senclip.classify(s2_scene, tmp_path / "m.tif", classes=CLASSES, loaded_model=color_model, mask=mask,
                           resolution="pixel")
    assert res.counts["blue water"] == 0 and res.counts["green meadow"] == 60 * 96


class CancelAfter(Feedback):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def advance(self, n=1):
        self.n -= 1
        if self.n <= 0:
            self.cancel()


def test_cancel_leaves_nothing_behind(tmp_path, color_model):
    scene = write_s2(tmp_path / "s.tif", width=600, height=600)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(Cancelled):
        senclip.classify(scene, out_dir / "m.tif", classes=CLASSES, loaded_model=color_model, batch_size=4,
                         feedback=CancelAfter(2))
    with pytest.raises(Cancelled):
        senclip.embed(scene, out_dir / "store", loaded_model=color_model, batch_size=4, feedback=CancelAfter(2))
    assert list(out_dir.iterdir()) == []


def test_all_nodata_input_is_an_error_and_writes_nothing(tmp_path, color_model):
    scene = write_s2(tmp_path / "s.tif", nodata_border=48, nodata=0)
    with pytest.raises(InputError, match="no tile .* valid pixels"):
        senclip.classify(scene, tmp_path / "m.tif", classes=CLASSES, loaded_model=color_model)
    assert not (tmp_path / "m.tif").exists()


@pytest.mark.numeric
def test_chip_minmax_stretch_is_applied_and_recorded(tmp_path, color_model):
    # A bright scene: the fixed stretch saturates all three channels (white, no hue left), while
    # chip-minmax stretches each chip by its own range and the colours come back. (The colour
    # stand-in ignores brightness, so a merely dark scene would pass with either stretch.)
    scene = write_s2(tmp_path / "s.tif", left=(4000, 9000, 4000), right=(9000, 4000, 4000))
    fixed = senclip.classify(scene, tmp_path / "f.tif", classes=CLASSES, loaded_model=color_model)
    assert fixed.counts["blue water"] == 0  # control: saturated chips tie, the first class takes them
    res = senclip.embed(scene, tmp_path / "store", loaded_model=color_model, stretch="chip-minmax")
    meta = json.loads((res.path / "meta.json").read_text())
    assert meta["radiometry"]["stretch"] == "chip-minmax"
    out = senclip.classify_store(res.path, tmp_path / "m.tif", classes=CLASSES, loaded_model=color_model)
    assert out.counts["green meadow"] >= 6 and out.counts["blue water"] >= 6
    with pytest.raises(InputError, match="--stretch must be one of"):
        senclip.embed(scene, tmp_path / "x", loaded_model=color_model, stretch="gamma")


def test_vrt_of_band_files(tmp_path, color_model):
    from osgeo import gdal

    src = write_s2(tmp_path / "s.tif", bands=4)
    files = []
    with rasterio.open(src) as ds:
        prof = dict(ds.profile, count=1)
        for i in range(1, 5):
            files.append(str(tmp_path / f"b{i}.tif"))
            with rasterio.open(files[-1], "w", **prof) as dst:
                dst.write(ds.read(i), 1)
    vrt = tmp_path / "stack.vrt"
    gdal.BuildVRT(str(vrt), files, separate=True).FlushCache()
    a = senclip.classify(vrt, tmp_path / "v.tif", classes=CLASSES, loaded_model=color_model)
    b = senclip.classify(src, tmp_path / "g.tif", classes=CLASSES, loaded_model=color_model)
    assert a.counts == b.counts and a.counts["green meadow"] > 0


class ProgressRecorder(Feedback):
    """Counts how often each stage's progress moves, and checks it ends at its total."""

    def __init__(self):
        super().__init__()
        self.stages = {}
        self.stage = None

    def start(self, total, text):
        self.stage = text
        self.stages[text] = {"total": total, "moves": 0, "done": 0}

    def advance(self, n=1):
        if n > 0:
            self.stages[self.stage]["moves"] += 1
            self.stages[self.stage]["done"] += n


def test_progress_moves_with_every_encoder_batch(tmp_path, color_model):
    """One read block (31 × 31 cells at stride 32) holds many batches: progress must still move
    per batch, not per block (the CLI bar sat at 0 % for a whole block)."""
    scene = write_s2(tmp_path / "s.tif", width=640, height=480)  # 20 × 15 cells: a single read block
    fb = ProgressRecorder()
    calls = color_model.image.calls
    senclip.embed(scene, tmp_path / "store", loaded_model=color_model, batch_size=16, feedback=fb)
    batches = color_model.image.calls - calls
    enc = fb.stages["encoding tiles"]
    assert batches == 19 and enc["moves"] >= batches  # 300 chips / 16
    assert enc["done"] == enc["total"] == 300


def test_worker_progress_events_follow_the_batches(tmp_path, color_model):
    import io

    from senclip.worker import Channel, JsonFeedback

    scene = write_s2(tmp_path / "s.tif", width=640, height=480)
    out = io.StringIO()
    calls = color_model.image.calls
    senclip.embed(scene, tmp_path / "store", loaded_model=color_model, batch_size=16,
                  feedback=JsonFeedback(Channel(out), 1))
    batches = color_model.image.calls - calls
    done = [e["done"] for e in map(json.loads, out.getvalue().splitlines())
            if e["event"] == "progress" and e["text"] == "encoding tiles"]
    assert len(set(done)) >= batches and done[-1] == 300


def test_store_is_the_same_without_os_pwrite(s2_scene, tmp_path, color_model, monkeypatch):
    """Windows has no os.pwrite: the seek-and-write fallback must give a byte-identical store."""
    from senclip.embedding import store

    senclip.embed(s2_scene, tmp_path / "a", loaded_model=color_model, batch_size=4)
    monkeypatch.delattr(store.os, "pwrite")
    assert store._choose_pwrite() is store._seek_write
    monkeypatch.setattr(store, "_pwrite", store._choose_pwrite())
    senclip.embed(s2_scene, tmp_path / "b", loaded_model=color_model, batch_size=4)
    for name in ("embeddings.npy", "valid.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
