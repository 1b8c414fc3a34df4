"""What the performance work must not change: results.

Reading in bounded blocks, writing and reading the store with positioned I/O in row blocks and
calibrating after block-wise scoring are all checked against the straightforward whole-array
computation; the int8 encoder against fp32 on real Sentinel-2 chips. No timings are asserted
here: speed is measured by ``make bench``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from s2data import write_s2

import senclip
from senclip import api
from senclip.embedding import pipeline
from senclip.core.errors import InputError
from senclip.core.feedback import Feedback
from senclip.sentinel2.scene import open_scene
from senclip.embedding.store import EmbeddingStore, StoreWriter
from senclip.embedding.tiling import TileGrid, fill_invalid
from senclip.zeroshot.head import calibrate_probabilities, probabilities

REPO = Path(__file__).resolve().parents[2]
CLASSES = "green meadow;blue water;red roofs"


def _textured_scene(path, width=203, height=147, seed=0):
    """Noise on top of the two-colour test scene, a nodata border and a nodata hole, so every
    chip differs and partially valid chips are common."""
    write_s2(path, width=width, height=height, nodata_border=6)
    rng = np.random.default_rng(seed)
    with rasterio.open(path, "r+") as ds:
        a = ds.read()
        noisy = np.where(a > 0, a + rng.integers(0, 400, a.shape), 0).astype(a.dtype)
        noisy[:, 40:70, 90:140] = 0
        ds.write(noisy)
    return path


def _reference_chips(scene, grid, min_valid):
    """Every chip cut from the whole area read at once: the obvious, unbounded way."""
    t, s, m = grid.tile, grid.stride, grid.margin
    h, w = (grid.rows - 1) * s + t, (grid.cols - 1) * s + t
    dn, valid = scene.read(-m, -m, h, w)
    rgb = scene.radiometry.to_uint8(dn)
    out = {}
    for r in range(grid.rows):
        for c in range(grid.cols):
            y, x = r * s, c * s
            v = valid[y:y + t, x:x + t]
            if v.sum() >= max(min_valid * t * t, 1):
                out[(r, c)] = fill_invalid(rgb[:, y:y + t, x:x + t], v)
    return out


@pytest.mark.parametrize("block_pixels", [40, 100, 1024])
@pytest.mark.parametrize("tile,stride", [(16, 8), (24, 24), (20, 6)])
def test_block_reading_cuts_the_same_chips_as_the_whole_array(tmp_path, monkeypatch, block_pixels, tile, stride):
    path = _textured_scene(tmp_path / "s.tif")
    monkeypatch.setattr(pipeline, "BLOCK_PIXELS", block_pixels)
    with open_scene(path) as scene:
        grid = TileGrid.create(scene.width, scene.height, tile, stride)
        ref = _reference_chips(scene, grid, 0.5)
        got, cells = {}, []
        for b in pipeline.iter_batches(scene, grid, batch_size=7, min_valid=0.5):
            assert len(b.chips) <= 7
            cells.append(b.cells_done)
            for r, c, x in zip(b.rows, b.cols, b.chips):
                assert (int(r), int(c)) not in got, "a chip was cut twice"
                got[(int(r), int(c))] = x
    assert got.keys() == ref.keys() and len(ref) > 20
    assert all(np.array_equal(got[k], ref[k]) for k in ref)
    assert cells == sorted(cells) and cells[-1] <= len(grid)


class _Progress(Feedback):
    def __init__(self):
        super().__init__()
        self.steps, self.totals = [], []

    def start(self, total, text=""):
        self.totals.append(total)
        super().start(total, text)

    def advance(self, n=1):
        self.steps.append(n)
        super().advance(n)


def test_progress_counts_every_cell_once_in_order(tmp_path, color_model, monkeypatch):
    path = _textured_scene(tmp_path / "s.tif")
    monkeypatch.setattr(pipeline, "BLOCK_PIXELS", 60)
    fb = _Progress()
    senclip.embed(path, tmp_path / "store", loaded_model=color_model, tile=16, stride=8, feedback=fb)
    grid = TileGrid(203, 147, 16, 8)
    assert fb.totals[0] == len(grid)
    assert min(fb.steps) >= 0 and sum(fb.steps) == len(grid)


@pytest.mark.numeric
@pytest.mark.parametrize("resolution", ["grid", "pixel"])
@pytest.mark.parametrize("calibrate", ["none", "column-mean"])
def test_streamed_output_equals_whole_array_output(tmp_path, color_model, monkeypatch, resolution, calibrate):
    """Tiny read blocks, store row blocks and map blocks give the same GeoTIFF as large ones."""
    from senclip.maps import classmap

    path = _textured_scene(tmp_path / "s.tif")
    opts = dict(classes=CLASSES, loaded_model=color_model, tile=16, stride=8, resolution=resolution,
                calibrate=calibrate)
    senclip.classify(path, tmp_path / "big.tif", save_embeddings=tmp_path / "big", **opts)
    monkeypatch.setattr(pipeline, "BLOCK_PIXELS", 33)
    monkeypatch.setattr(api, "STORE_BLOCK_ROWS", 2)
    monkeypatch.setattr(classmap, "BLOCK_ROWS", 5)
    senclip.classify(path, tmp_path / "small.tif", save_embeddings=tmp_path / "small", **opts)
    with rasterio.open(tmp_path / "big.tif") as a, rasterio.open(tmp_path / "small.tif") as b:
        assert np.array_equal(a.read(), b.read())
        assert len(np.unique(a.read(1))) >= 3  # nodata and at least two classes: not a trivial map
    assert np.array_equal(np.load(tmp_path / "big" / "embeddings.npy"), np.load(tmp_path / "small" / "embeddings.npy"))


@pytest.mark.numeric
def test_blockwise_calibration_equals_whole_array_calibration():
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((500, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cls = emb[:4] + 0.1
    cls /= np.linalg.norm(cls, axis=1, keepdims=True)
    whole = probabilities(emb, cls, calibrate="column-mean")
    blocks = np.concatenate([probabilities(emb[i:i + 37], cls) for i in range(0, 500, 37)])
    # equal up to BLAS blocking round-off: the matrix product may sum in another order per block size
    np.testing.assert_allclose(calibrate_probabilities(blocks, "column-mean"), whole, rtol=1e-5, atol=1e-7)
    with pytest.raises(InputError, match="--calibrate"):
        calibrate_probabilities(blocks, "median")


def _meta():
    return {"model": {"model_id": "x", "checksum": "c", "arch": "a", "embed_dim": 5}}


def test_store_writer_and_block_reader_match_the_array_written(tmp_path):
    rows, cols, dim = 13, 11, 5
    ref = np.zeros((rows, cols, dim), np.float16)
    w = StoreWriter(tmp_path / "st", rows=rows, cols=cols, dim=dim, meta=_meta())
    rng = np.random.default_rng(0)
    cells = [(r, c) for r in range(rows) for c in range(cols) if (r * 7 + c) % 5]  # gaps stay nodata
    order = rng.permutation(len(cells))
    for i in range(0, len(cells), 9):  # batches in scrambled order, with runs and gaps
        sel = [cells[j] for j in order[i:i + 9]]
        rs, cs = np.array([a for a, _ in sel]), np.array([b for _, b in sel])
        e = rng.standard_normal((len(sel), dim)).astype(np.float32)
        ref[rs, cs] = e.astype(np.float16)
        w.write(rs, cs, e)
    w.commit()
    st = EmbeddingStore(tmp_path / "st")
    assert np.array_equal(np.load(tmp_path / "st" / "embeddings.npy"), ref)
    assert np.array_equal(st.embeddings, ref)  # the memory map still works for callers that use it
    got = np.concatenate([e for _, _, e in st.iter_rows(4)])
    assert np.array_equal(got, ref)
    assert np.array_equal(st.read_rows(5, 9), ref[5:9]) and st.read_rows(12, 20).shape == (1, cols, dim)
    assert st.valid.sum() == len(cells)


def test_truncated_store_is_reported_not_read_as_zeros(tmp_path):
    w = StoreWriter(tmp_path / "st", rows=4, cols=4, dim=5, meta=_meta())
    w.write(np.array([0]), np.array([0]), np.ones((1, 5), np.float32))
    w.commit()
    f = tmp_path / "st" / "embeddings.npy"
    data = f.read_bytes()
    st = EmbeddingStore(tmp_path / "st")
    f.write_bytes(data[:-20])
    with pytest.raises(InputError, match="truncated"):
        list(st.iter_rows(2))


def test_aborted_store_leaves_nothing(tmp_path):
    w = StoreWriter(tmp_path / "st", rows=3, cols=3, dim=2, meta=_meta())
    w.write(np.array([1]), np.array([1]), np.ones((1, 2), np.float32))
    w.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.real_data
def test_int8_agrees_with_fp32_on_real_sentinel2_chips(tiny_checkpoint):
    """Dynamic int8 (the exporter's own settings) against fp32 ONNX on every chip of the real
    Berlin scene at stride 64: near-identical embeddings and the same nearest class vector."""
    from senclip.sentinel2.demo import DEMO_CLASSES, fetch_demo_scene
    from senclip.models.loading import load_model

    scene_dir = fetch_demo_scene(REPO / "build" / "data")
    fp32 = load_model(checkpoint=tiny_checkpoint, backend="onnx", device="cpu")
    int8 = load_model(checkpoint=tiny_checkpoint, backend="onnx", device="cpu", int8=True)
    assert int8.image.meta["int8"] == "true" and fp32.image.meta["int8"] == "false"
    with open_scene(scene_dir) as scene:
        grid = TileGrid.create(scene.width, scene.height, 64, 64)
        chips = np.concatenate([b.chips for b in pipeline.iter_batches(scene, grid, batch_size=64, min_valid=0.5)])
    assert len(chips) == len(grid)  # the subset has no nodata
    a = np.concatenate([fp32.image.encode_chips(chips[i:i + 64]) for i in range(0, len(chips), 64)])
    b = np.concatenate([int8.image.encode_chips(chips[i:i + 64]) for i in range(0, len(chips), 64)])
    cos = (a * b).sum(1)
    assert cos.min() >= 0.999, f"int8 cosine to fp32: min {cos.min():.5f}, mean {cos.mean():.5f}"
    # Class vectors: fp32 embeddings of chips spread over the scene (a tiny random text tower would
    # make one class win everywhere). Random weights put most chips within ~0.001 cosine of a tie
    # between two classes, far below any real model's margins, where the int8 error alone decides;
    # agreement is required where fp32 has a margin of at least 0.005, and such chips must exist.
    cls = a[np.linspace(0, len(a) - 1, len(DEMO_CLASSES)).astype(int)]
    sa = a @ cls.T
    top2 = np.sort(sa, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) >= 0.005
    top_a, top_b = np.argmax(sa, 1), np.argmax(b @ cls.T, 1)
    assert decided.mean() >= 0.1 and len(set(top_a.tolist())) >= 2
    assert (top_a[decided] == top_b[decided]).mean() >= 0.99


def test_text_encoder_trimmed_to_the_longest_prompt_equals_full_context(tiny_checkpoint):
    """Prompts run only up to the longest one's end token; the result must be CLIP's own
    full-context ``encode_text``."""
    import torch
    import torch.nn.functional as F

    from senclip.models.loading import load_model

    lm = load_model(checkpoint=tiny_checkpoint, device="cpu")
    texts = ["a satellite photo of a forest.", "water", "a ground-level photo of tall trees in a dense forest."]
    assert lm.text.module.can_trim()
    got = lm.text.encode_texts(texts)
    tokens = lm.text.tokenizer(texts, context_length=lm.text.context_length)
    with torch.inference_mode():
        ref = F.normalize(lm.text.module.model.encode_text(tokens), dim=-1).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert not np.allclose(got[0], got[1])


def test_pixel_pass_holds_one_block_not_the_whole_grid_per_class(tmp_path):
    """The pixel-resolution pass works block by block: what it allocates stays below the size of
    the grid's probabilities themselves (the old pass held float64 prefix sums of every class over
    the whole grid, twice their size, and 8-byte copies of a block's pixels to count classes), and
    it does not grow with the number of grid rows."""
    import tracemalloc

    from affine import Affine
    from rasterio.crs import CRS

    from senclip.maps.classmap import write_pixels
    from senclip.maps.geotiff import ClassMapWriter

    peaks = {}
    for height in (1024, 2048):
        grid = TileGrid.create(4096, height, 64, 32)
        probs = np.random.default_rng(0).dirichlet(np.ones(19), size=grid.shape).astype(np.float32)
        valid = np.ones(grid.shape, bool)
        writer = ClassMapWriter(tmp_path / f"px{height}.tif", width=grid.width, height=grid.height,
                                transform=Affine(10, 0, 300000, 0, -10, 5900000), crs=CRS.from_epsg(32633),
                                classes=[f"class {i}" for i in range(19)], tags={})
        tracemalloc.start()
        write_pixels(writer, probs, valid, grid, pixel_valid=None, feedback=Feedback(), budget=256 << 10)
        peaks[height] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        writer.commit()
        with rasterio.open(writer.path) as ds:
            assert (ds.read(1, window=((height - 256, height), (0, 4096))) > 0).all()  # written to the end
    assert peaks[2048] < probs.nbytes, f"peak {peaks[2048] / 1e6:.2f} MB for {probs.nbytes / 1e6:.2f} MB of probabilities"
    assert peaks[2048] < 1.2 * peaks[1024]  # twice the rows: the same blocks


def test_gdal_holds_two_rows_of_written_blocks_when_no_input_is_read():
    """Blocks written are never read again, yet GDAL keeps them until its cache (128 MB) is full:
    a pass that reads no input bounds the cache to two rows of output blocks; re-reading the
    input leaves it as the embed stage set it."""
    from rasterio.env import get_gdal_config

    from senclip.maps.classmap import write_pixels

    grid = TileGrid.create(2048, 600, 64, 32)
    probs = np.full(grid.shape + (3,), 1 / 3, np.float32)
    seen = []

    class Writer:
        def write_bands(self, window, bands):
            seen.append(get_gdal_config("GDAL_CACHEMAX"))

    write_pixels(Writer(), probs, np.ones(grid.shape, bool), grid, pixel_valid=None, feedback=Feedback())
    assert seen and {int(v) for v in seen} == {2 * 3 * grid.width * grid.height}  # one strip here: twice it
    assert 2 * 3 * grid.width * grid.height < pipeline.gdal_cache_bytes()
    seen.clear()
    write_pixels(Writer(), probs, np.ones(grid.shape, bool), grid, feedback=Feedback(),
                 pixel_valid=lambda y0, h: np.ones((h, grid.width), bool))
    assert seen and set(seen) == {get_gdal_config("GDAL_CACHEMAX")}
