"""Pure functions: prompts, tiling, the zero-shot head, radiometry, output encoding, imports."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from senclip.core.errors import InputError
from senclip.maps.geotiff import encode_probabilities
from senclip.zeroshot.prompts import STYLES, build_prompt_set, parse_classes, shipped_set
from senclip.sentinel2.product import find_product, metadata_near, radiometric_offset
from senclip.sentinel2.scene import Radiometry
from senclip.embedding.tiling import TileGrid
from senclip.zeroshot.head import probabilities


def test_shipped_prompt_sets_cover_eurosat_and_bigearthnet_in_every_style():
    for style in STYLES:
        assert len(shipped_set("eurosat", style)) == 10
        assert len(shipped_set("bigearthnet", style)) == 19
        assert all(len(v) >= 2 for v in shipped_set("eurosat", style).values())


def test_prompt_set_uses_shipped_prompts_then_templates():
    ps = build_prompt_set("forest;Glacier tongue", style="ground")
    assert ps["forest"] == shipped_set("eurosat", "ground")["Forest"]
    assert ps["Glacier tongue"][0] == "a ground-level photo of Glacier tongue."
    assert build_prompt_set("Forest", style="aerial")["Forest"] != ps["forest"]


def test_prompt_file_defines_classes_and_order(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"B": ["b"], "A": "a"}))
    assert build_prompt_set(prompts=f) == {"B": ["b"], "A": ["a"]}
    assert list(build_prompt_set("a;b", prompts=f)) == ["a", "b"]


@pytest.mark.parametrize("classes, msg", [("", "no classes"), ("A;a", "given twice"), (";;", "no classes")])
def test_bad_class_lists(classes, msg):
    with pytest.raises(InputError, match=msg):
        build_prompt_set(classes)


def test_bad_prompt_files(tmp_path):
    f = tmp_path / "p.json"
    f.write_text("{not json")
    with pytest.raises(InputError, match="not valid UTF-8 JSON"):
        build_prompt_set(prompts=f)
    f.write_text(json.dumps(["a", "b"]))
    with pytest.raises(InputError, match="non-empty JSON object"):
        build_prompt_set(prompts=f)
    with pytest.raises(InputError, match="prompt-style"):
        build_prompt_set("A", style="poetic")
    assert parse_classes(["  A ", "B"]) == ["A", "B"]


def test_tile_grid_geometry():
    g = TileGrid.create(100, 70, 64, 32)
    assert (g.rows, g.cols, g.margin) == (3, 4, 16)
    assert g.chip_origin(1, 2) == (16, 48)
    first, last = g.covering(0, 100, g.cols)
    # pixel 0 is covered by chip 0 only; pixel 40 by chips 0 and 1
    assert (first[0], last[0]) == (0, 1) and (first[40], last[40]) == (0, 2)
    with pytest.raises(InputError, match="--tile 128 is larger than the raster \\(100×70 px\\); use --tile 70"):
        TileGrid.create(100, 70, 128)


@pytest.mark.numeric
def test_zero_shot_probabilities_and_column_mean():
    img = np.array([[1, 0], [0.8, 0.6], [0.6, 0.8]], dtype=np.float32)
    cls = np.array([[1, 0], [0, 1]], dtype=np.float32)
    p = probabilities(img, cls, logit_scale=1.0)
    assert np.allclose(p.sum(1), 1)
    e = np.exp([[1, 0], [0.8, 0.6], [0.6, 0.8]])
    assert np.allclose(p, e / e.sum(1, keepdims=True), atol=1e-6)
    q = probabilities(img, cls, logit_scale=1.0, calibrate="column-mean")
    manual = p / p.mean(0, keepdims=True)
    assert np.allclose(q, manual / manual.sum(1, keepdims=True), atol=1e-6)
    with pytest.raises(InputError):
        probabilities(img, cls, calibrate="median")


@pytest.mark.numeric
def test_encode_probabilities_class_confidence_margin():
    probs = np.array([[[0.7]], [[0.2]], [[0.1]]], dtype=np.float32)
    out = encode_probabilities(probs, np.array([[True]]))
    assert out[:, 0, 0].tolist() == [1, 70, 50]
    assert encode_probabilities(probs, np.array([[False]]))[:, 0, 0].tolist() == [0, 0, 0]


def test_radiometry_offset_and_stretch(tmp_path):
    r = Radiometry(scale=10000, offset=-1000, max_reflectance=0.3)
    assert r.to_uint8(np.array([1000, 2500, 4000, 9000])).tolist() == [0, 128, 255, 255]
    safe = tmp_path / "S2B_MSIL2A_20230601T101609_N0509_R065_T32UPU_20230601T131421.SAFE"
    (safe / "GRANULE" / "X" / "IMG_DATA" / "R10m").mkdir(parents=True)
    r10 = safe / "GRANULE" / "X" / "IMG_DATA" / "R10m"
    assert metadata_near(r10) == (None, None) and radiometric_offset(None, ["B04"], r10) == -1000
    (safe / "MTD_MSIL2A.xml").write_text("<BOA_ADD_OFFSET band_id=\"3\">-1000</BOA_ADD_OFFSET>")
    assert radiometric_offset(metadata_near(safe / "GRANULE")[0], ["B04"], safe) == -1000
    old = tmp_path / "S2A_MSIL1C_20170216T102101_N0204_R065_T33UUU_20170216T102204.SAFE"
    old.mkdir()
    assert radiometric_offset(None, ["B04"], old) == 0


def test_l2a_band_files_prefer_10m(tmp_path):
    for res in ("10m", "20m", "60m"):
        d = tmp_path / f"R{res}"
        d.mkdir()
        (d / f"T32UPU_20230601T101609_B04_{res}.jp2").write_bytes(b"")
    paths, res = find_product(tmp_path).select(["B04"])
    assert res == 10 and paths[0].endswith("_10m.jp2")


def test_import_senclip_is_light():
    code = "import sys, senclip, senclip.api, senclip.cli.main; " \
           "bad = [m for m in ('torch', 'open_clip', 'onnxruntime', 'qgis', 'PyQt5') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_fill_missing_prompts_for_the_dock_table():
    ps = build_prompt_set(["Forest", "My class"], prompts={"Forest": [], "My class": ["a photo of mine"]},
                          style="aerial", fill_missing=True)
    assert ps["Forest"] == shipped_set("eurosat", "aerial")["Forest"] and ps["My class"] == ["a photo of mine"]
    with pytest.raises(InputError, match="no classes"):
        build_prompt_set(None, prompts={}, fill_missing=True)


def test_chip_minmax_stretch_uses_the_chips_valid_range():
    r = Radiometry(stretch="chip-minmax")
    dn = np.array([[[100, 200], [300, 0]]] * 3, dtype=np.uint16)
    valid = np.array([[True, True], [True, False]])
    out = r.chip_to_uint8(dn, valid)
    assert out[0].tolist() == [[0, 128], [255, 0]] and r.per_chip
    assert not Radiometry(stretch="chip-minmax", passthrough_8bit=True).per_chip


def test_diagnostics_command_reports_versions_and_devices():
    out = subprocess.run([sys.executable, "-m", "senclip.cli.main", "diagnostics", "--check"], capture_output=True,
                         text=True, check=True).stdout
    info = json.loads(out)
    assert info["versions"]["senclip"] and info["gdal"] and info["checks"]["torch-cpu"] is True
    assert "CPUExecutionProvider" in info["devices"]["onnxruntime"]["providers"]


class _BandsRecorder:
    """Stands in for ClassMapWriter: keeps the bands written per window."""

    def __init__(self, height, width):
        self.bands = np.full((3, height, width), 255, dtype=np.uint8)

    def write_bands(self, window, bands):
        self.bands[:, window.row_off:window.row_off + window.height, window.col_off:window.col_off + window.width] = bands


@pytest.mark.numeric
@pytest.mark.parametrize("budget", [1, 10_000, None])
def test_pixel_resolution_is_the_mean_of_covering_chips(budget):
    """write_pixels against the definition, pixel by pixel: mean probability of the valid chips
    covering the pixel, whatever the block size the memory budget picks."""
    from senclip.maps.classmap import write_pixels
    from senclip.core.feedback import Feedback

    grid = TileGrid.create(70, 45, 16, 4)
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(7), size=(grid.rows, grid.cols)).astype(np.float32)
    valid = rng.random((grid.rows, grid.cols)) > 0.3
    valid[:, :3] = False  # a band of cells with no valid chip at all
    rec = _BandsRecorder(grid.height, grid.width)
    write_pixels(rec, probs, valid, grid, pixel_valid=None, feedback=Feedback(), budget=budget)
    r0, r1 = grid.covering(0, grid.height, grid.rows)
    c0, c1 = grid.covering(0, grid.width, grid.cols)
    want = np.zeros_like(rec.bands)
    for y in range(grid.height):
        for x in range(grid.width):
            ok = valid[r0[y]:r1[y], c0[x]:c1[x]]
            if ok.any():
                mean = probs[r0[y]:r1[y], c0[x]:c1[x]][ok].astype(np.float64).mean(0).astype(np.float32)
                want[:, y, x] = encode_probabilities(mean[:, None, None], np.array([[True]]))[:, 0, 0]
    assert (want[0] == 0).any() and (want[0] > 0).any()
    assert np.array_equal(rec.bands[0], want[0])
    assert np.abs(rec.bands[1:].astype(int) - want[1:]).max() <= 1  # float rounding of the mean only


@pytest.mark.numeric
def test_a_tie_is_classified_with_zero_margin():
    probs = np.array([[[0.4]], [[0.4]], [[0.2]]], dtype=np.float32)
    assert encode_probabilities(probs, np.array([[True]]))[:, 0, 0].tolist() == [1, 40, 0]
