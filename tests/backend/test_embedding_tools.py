"""Few-shot, find-similar, change and accuracy on small scenes made in code, and the accuracy
formulas against independent computations (scikit-learn; the worked example of Olofsson et al. 2014)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio

from senclip.tools.accuracy import olofsson, summarise
from senclip.cli.main import main
from senclip.core.errors import InputError, StoreMismatchError


# --- the formulas ------------------------------------------------------------------------------
# Olofsson et al. (2014), section 5 / Table 8: map classes 1 deforestation, 2 forest gain,
# 3 stable forest, 4 stable non-forest; rows = map, columns = reference; 30 m pixels.
PAPER_MATRIX = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
PAPER_MAP_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])


def test_olofsson_reproduces_the_papers_worked_example():
    names = ["deforestation", "gain", "stable forest", "stable non-forest"]
    est = olofsson(PAPER_MATRIX, PAPER_MAP_PIXELS, names, unit_area=900.0)
    d = est["per_class"]["deforestation"]
    # The paper: deforestation area 21,158 ha ± 6,158 ha (95 % CI).
    assert d["area_m2"] / 1e4 == pytest.approx(21_158, abs=1)
    assert d["area_m2_ci95"] / 1e4 == pytest.approx(6_158, abs=2)
    # By hand from eqs. 2, 4, 5, 6 for the same table:
    W = PAPER_MAP_PIXELS / PAPER_MAP_PIXELS.sum()
    ni = PAPER_MATRIX.sum(1)
    oa = sum(W[i] * PAPER_MATRIX[i, i] / ni[i] for i in range(4))
    assert est["overall_accuracy"] == pytest.approx(oa)
    assert round(oa, 2) == 0.95  # the paper's overall accuracy
    u = PAPER_MATRIX[0, 0] / ni[0]
    assert d["users_accuracy"] == pytest.approx(0.88)
    assert d["users_accuracy_ci95"] == pytest.approx(1.959964 * np.sqrt(u * (1 - u) / (ni[0] - 1)))
    v_oa = sum(W[i] ** 2 * (PAPER_MATRIX[i, i] / ni[i]) * (1 - PAPER_MATRIX[i, i] / ni[i]) / (ni[i] - 1) for i in range(4))
    assert est["overall_accuracy_ci95"] == pytest.approx(1.959964 * np.sqrt(v_oa))
    # producer's accuracy of deforestation: p̂_11 / p̂_.1 (eq. 3)
    p11 = W[0] * 66 / 75
    p_1 = W[0] * 66 / 75 + W[2] * 1 / 165 + W[3] * 2 / 325
    assert d["producers_accuracy"] == pytest.approx(p11 / p_1)
    assert sum(c["area_proportion"] for c in est["per_class"].values()) == pytest.approx(1.0)


def test_summary_matches_scikit_learn():
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

    rng = np.random.default_rng(1)
    ref = rng.integers(0, 4, 500)
    pred = np.where(rng.random(500) < 0.6, ref, rng.integers(0, 4, 500))
    m = np.zeros((4, 4), int)
    np.add.at(m, (pred, ref), 1)
    s = summarise(m, list("abcd"))
    assert np.array_equal(np.array(s["matrix"]).T, confusion_matrix(ref, pred))  # sklearn: rows = truth
    assert s["kappa"] == pytest.approx(cohen_kappa_score(ref, pred))
    p, r, f, _ = precision_recall_fscore_support(ref, pred)
    for k, name in enumerate("abcd"):
        assert s["per_class"][name]["precision"] == pytest.approx(p[k])
        assert s["per_class"][name]["recall"] == pytest.approx(r[k])
        assert s["per_class"][name]["f1"] == pytest.approx(f[k])


def test_otsu_splits_a_bimodal_histogram():
    from senclip.tools.similarity import otsu

    v = np.r_[np.random.default_rng(0).normal(0.2, 0.02, 900), np.random.default_rng(1).normal(0.8, 0.02, 100)]
    assert 0.3 < otsu(v) < 0.7


# --- the tools on a scene made in code ----------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_checkpoint):
    """Encoded once for the module; the tools only read it."""
    import senclip
    from s2data import write_s2

    d = tmp_path_factory.mktemp("tools")
    return senclip.embed(write_s2(d / "scene.tif"), d / "store", checkpoint=tiny_checkpoint, tile=16, stride=8,
                         device="cpu").path


def _features(path, items, crs="EPSG:32633"):
    """Points (x, y, label) in the scene's CRS (the scene spans x 330000..331600, y 5821040..5822000)."""
    fc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": crs}},
          "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                        "properties": {"class": c}} for x, y, c in items]}
    path.write_text(json.dumps(fc))
    return path


LEFT = [(330100 + 60 * i, 5821500, "green") for i in range(5)]  # left half: green
RIGHT = [(331200 + 60 * i, 5821500, "blue") for i in range(5)]  # right half: blue


def test_fewshot_from_examples_alone_needs_no_prompt(store, tmp_path):
    from senclip.tools.fewshot import fewshot

    ex = _features(tmp_path / "ex.geojson", LEFT + RIGHT)
    res = fewshot(store, tmp_path / "fs.tif", examples=ex)
    with rasterio.open(res.map.path) as ds:
        cls = ds.read(1)
        assert json.loads(ds.tags()["SENCLIP_FEWSHOT"])["method"] == "logistic-text-prior"
    assert res.map.classes == ["green", "blue"]
    w = cls.shape[1]
    assert (cls[2:-2, 1: w // 2 - 2] == 1).mean() > 0.95 and (cls[2:-2, w // 2 + 2: -1] == 2).mean() > 0.95
    assert res.cross_validation["overall_accuracy"] == 1.0  # held-out examples, trivially separable colours
    saved = json.loads(res.examples_path.read_text())
    assert len(saved["features"]) == 10 and {f["properties"]["class"] for f in saved["features"]} == {"green", "blue"}
    assert json.loads(res.report_path.read_text())["examples"]["green"]["features"] == 5


@pytest.mark.numeric
def test_fewshot_blends_prompts_and_allows_classes_without_prompt(store, tmp_path):
    from senclip.tools.fewshot import fewshot

    ex = _features(tmp_path / "ex.geojson", RIGHT)  # examples of "blue" only; "Forest" has a prompt only
    res = fewshot(store, tmp_path / "fs.tif", examples=ex, classes="Forest", example_weight=0.5)
    assert res.map.classes == ["Forest", "blue"]
    with rasterio.open(res.map.path) as ds:
        prompts = json.loads(ds.tags()["SENCLIP_PROMPTS"])
    assert prompts["Forest"] and prompts["blue"] == []
    assert res.map.counts["blue"] > 0
    with pytest.raises(InputError, match="example-weight"):
        fewshot(store, tmp_path / "x.tif", examples=ex, example_weight=2)
    with pytest.raises(InputError, match="no field 'kind'"):
        fewshot(store, tmp_path / "x.tif", examples=ex, field="kind")
    assert not (tmp_path / "x.tif").exists()


def test_find_similar_point_query_marks_its_own_half(store, tmp_path):
    from senclip.tools.similarity import find_similar

    q = _features(tmp_path / "q.geojson", LEFT[:1])
    res = find_similar(store, tmp_path / "sim.tif", query=q, mask_out=tmp_path / "mask.tif")
    with rasterio.open(res.path) as ds, rasterio.open(res.mask_path) as mk:
        sim, mask = ds.read(1), mk.read(1)
    w = sim.shape[1]
    assert sim[2:-2, 1: w // 2 - 2].mean() > sim[2:-2, w // 2 + 2: -1].mean()
    assert mask[2:-2, 1: w // 2 - 2].mean() > 0.9 and mask[2:-2, w // 2 + 2: -1].mean() < 0.1
    assert 0.3 < res.share_above < 0.7 and res.threshold_method == "otsu"


def test_find_similar_text_query_and_bad_queries(store, tmp_path, tiny_checkpoint):
    from senclip.tools.similarity import find_similar

    res = find_similar(store, tmp_path / "sim.tif", text="solar farms", threshold=0.0)
    assert res.query["text"] == "solar farms" and res.threshold_method == "given"
    with pytest.raises(InputError, match="exactly one query"):
        find_similar(store, tmp_path / "x.tif")
    far = _features(tmp_path / "far.geojson", [(10.0, 50.0, "x")], crs="EPSG:4326")
    with pytest.raises(InputError, match="no valid cell"):
        find_similar(store, tmp_path / "x.tif", query=far)
    assert not (tmp_path / "x.tif").exists()


def test_find_similar_image_chip_query(store, tmp_path, tiny_checkpoint):
    """A chip of the scene's green, as a Sentinel-2 band stack or as an 8-bit PNG picture, embeds
    like the store's own green cells (same model, same radiometry) and marks the green half; a
    chip bigger than a tile is cut into tiles."""
    from s2data import BLUE_DN, GREEN_DN, write_s2

    from senclip.tools.chipquery import chip_query_vector
    from senclip.models.loading import load_model
    from senclip.sentinel2.scene import Radiometry
    from senclip.tools.similarity import find_similar
    from senclip.embedding.store import EmbeddingStore

    st, lm = EmbeddingStore(store), load_model(checkpoint=tiny_checkpoint, device="cpu")
    green = write_s2(tmp_path / "green.tif", width=16, height=16, left=GREEN_DN, right=GREEN_DN)
    with rasterio.open(green) as ds:
        rgb = Radiometry().to_uint8(ds.read([3, 2, 1]))
    png = tmp_path / "green.png"
    with warnings.catch_warnings():  # a picture has no georeferencing, and needs none
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(png, "w", driver="PNG", width=16, height=16, count=3, dtype="uint8") as ds:
            ds.write(rgb)
    inner = np.asarray(st.embeddings[st.valid.shape[0] // 2, 2], dtype=np.float32)  # a cell inside the green half
    inner /= np.linalg.norm(inner)
    for chip in (green, png):
        q, described = chip_query_vector(st, chip, loaded_model=lm)
        assert described["windows"] == 1 and float(q @ inner) > 0.999, chip
    res = find_similar(store, tmp_path / "s.tif", chip=png, loaded_model=lm)
    with rasterio.open(res.path) as ds:
        sim = ds.read(1)
    w = sim.shape[1]
    assert sim[2:-2, 1: w // 2 - 2].mean() > sim[2:-2, w // 2 + 2: -1].mean() and res.query["chip"] == str(png)
    big = write_s2(tmp_path / "blue.tif", width=64, height=40, left=BLUE_DN, right=BLUE_DN)
    q, described = chip_query_vector(st, big, loaded_model=lm)
    assert described["windows"] == 28  # 16 px tiles at stride 8: 7 × 4
    res = find_similar(store, tmp_path / "b.tif", chip=big, loaded_model=lm)
    with rasterio.open(res.path) as ds:
        sim = ds.read(1)
    assert sim[2:-2, w // 2 + 2: -1].mean() > sim[2:-2, 1: w // 2 - 2].mean()
    two = tmp_path / "two.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(two, "w", driver="GTiff", width=8, height=8, count=2, dtype="float32") as ds:
            ds.write(np.ones((2, 8, 8), np.float32))
    with pytest.raises(InputError, match="2 band"):
        find_similar(store, tmp_path / "x.tif", chip=two)
    with pytest.raises(InputError, match="exactly one query"):
        find_similar(store, tmp_path / "x.tif", chip=png, text="solar farms")
    assert not (tmp_path / "x.tif").exists()


def test_change_of_a_store_with_itself_is_zero_and_mismatches_are_refused(store, tmp_path, s2_scene,
                                                                          tiny_checkpoint):
    import senclip
    from senclip.tools.change import change

    res = change(store, store, tmp_path / "d.tif", classes="green;blue", table=tmp_path / "t.csv",
                 changes_out=tmp_path / "c.tif")
    with rasterio.open(res.path) as ds:
        d = ds.read(1)
    assert (d[d != -1] == 0).all() and res.changed_cells == 0
    assert all(not r["changed"] for r in res.transitions)
    other = senclip.embed(s2_scene, tmp_path / "other", checkpoint=tiny_checkpoint, tile=16, stride=16, device="cpu")
    with pytest.raises(StoreMismatchError, match="stride"):
        change(store, other.path, tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.numeric
def test_change_finds_the_altered_half(tmp_path, tiny_checkpoint):
    import senclip
    from s2data import BLUE_DN, GREEN_DN, write_s2
    from senclip.tools.change import change

    a = write_s2(tmp_path / "a.tif", left=GREEN_DN, right=BLUE_DN)
    b = write_s2(tmp_path / "b.tif", left=GREEN_DN, right=GREEN_DN)  # the right half turned green
    sa = senclip.embed(a, tmp_path / "sa", checkpoint=tiny_checkpoint, tile=16, stride=8, device="cpu").path
    sb = senclip.embed(b, tmp_path / "sb", checkpoint=tiny_checkpoint, tile=16, stride=8, device="cpu").path
    res = change(sa, sb, tmp_path / "d.tif", classes="green;blue")
    with rasterio.open(res.path) as ds:
        d = ds.read(1)
    w = d.shape[1]
    assert d[2:-2, w // 2 + 2: -1].mean() > 10 * max(d[2:-2, 1: w // 2 - 2].mean(), 1e-6)


def test_accuracy_report_files_and_cli(store, tmp_path, capsys):
    from senclip.tools.fewshot import fewshot

    ex = _features(tmp_path / "ex.geojson", LEFT + RIGHT)
    fewshot(store, tmp_path / "fs.tif", examples=ex)
    ref = _features(tmp_path / "ref.geojson", [(330200, 5821200, "green"), (331400, 5821200, "blue"),
                                              (331450, 5821300, "water")])
    with pytest.raises(SystemExit) as e:
        main(["-q", "accuracy", str(tmp_path / "fs.tif"), "--reference", str(ref), "--out", str(tmp_path / "rep")])
    assert e.value.code == 0, capsys.readouterr().err
    rep = json.loads((tmp_path / "rep" / "accuracy.json").read_text())
    assert rep["classes"] == ["green", "blue", "water"] and rep["reference_only_classes"] == ["water"]
    assert rep["samples"] == 3 and rep["overall_accuracy"] == pytest.approx(2 / 3)
    assert (tmp_path / "rep" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert "Overall accuracy" in (tmp_path / "rep" / "report.html").read_text()
    with pytest.raises(SystemExit) as e:  # exists: refused
        main(["-q", "accuracy", str(tmp_path / "fs.tif"), "--reference", str(ref), "--out", str(tmp_path / "rep")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["-q", "accuracy", str(tmp_path / "fs.tif"), "--reference", str(ref), "--out", str(tmp_path / "r2"),
              "--match", "water=Lake"])
    assert e.value.code == 2 and "Lake" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


def _writer_map(path, cls):
    """A class map written by senclip's own writer (cloud mask on), band 1 = ``cls`` as given."""
    from rasterio.transform import from_origin

    from senclip.maps.geotiff import ClassMapWriter

    h, w = cls.shape
    writer = ClassMapWriter(path, width=w, height=h, transform=from_origin(330000, 5822000, 10, 10),
                            crs="EPSG:32633", classes=["green", "blue"], tags={}, cloud=True)
    writer.write_bands(rasterio.windows.Window(0, 0, w, h), np.stack([cls, np.full_like(cls, 90), np.full_like(cls, 50)]))
    return writer.commit()


def test_accuracy_counts_cloud_cells_out_and_refuses_foreign_values(tmp_path, capsys):
    """Cloud (255) under a reference point is "not seen": counted out and reported, not an error
    (it used to crash with IndexError 254). A value senclip never writes is refused."""
    from senclip.tools.accuracy import accuracy_report
    from senclip.maps.geotiff import CLOUD_VALUE

    cls = np.ones((10, 20), np.uint8)
    cls[:, 10:] = 2
    cls[:3, :] = CLOUD_VALUE  # the top three rows are cloud
    cmap = _writer_map(tmp_path / "m.tif", cls)
    pts = [(330005 + 10 * c, 5821995 - 10 * r, "green" if c < 10 else "blue") for r in (1, 5, 8) for c in (2, 12, 15)]
    pts.append((330005 + 10 * 4, 5821995 - 10 * 6, "blue"))  # one error, on a clear cell
    ref = _features(tmp_path / "ref.geojson", pts)
    with pytest.raises(SystemExit) as e:
        main(["accuracy", str(cmap), "--reference", str(ref), "--out", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert e.value.code == 0, out
    rep = json.loads((tmp_path / "rep" / "accuracy.json").read_text())
    assert rep["cloud_samples"] == 3 and rep["unclassified_samples"] == 0
    assert rep["samples"] == 7 and rep["overall_accuracy"] == pytest.approx(6 / 7)  # the clear points only
    assert rep["area_adjusted"]["cloud_pixels"] == 60 and rep["area_adjusted"]["total_pixels"] == 140
    assert "3 reference pixels on cloud / shadow" in out
    assert "3 on cloud / shadow pixels left out" in (tmp_path / "rep" / "report.html").read_text()
    cls[9, 0] = 7  # not a class of a 2-class map, not 0, not cloud
    bad = _writer_map(tmp_path / "bad.tif", cls)
    ref = _features(tmp_path / "ref2.geojson", [(330005, 5821995 - 90, "green")])
    with pytest.raises(InputError, match="value\\(s\\) 7 .* neither"):
        accuracy_report(bad, ref, tmp_path / "rep2")
    only_cloud = _features(tmp_path / "ref3.geojson", [(330005, 5821995, "green")])
    with pytest.raises(InputError, match="cloud"):
        accuracy_report(cmap, only_cloud, tmp_path / "rep3")
    assert not (tmp_path / "rep2").exists() and not (tmp_path / "rep3").exists()


def test_cli_fewshot_similar_change(store, tmp_path, capsys):
    ex = _features(tmp_path / "ex.geojson", LEFT + RIGHT)
    for argv in (["fewshot", str(store), "--examples", str(ex), "--out", str(tmp_path / "fs.tif")],
                 ["similar", str(store), "--query", str(ex), "--out", str(tmp_path / "s.tif")],
                 ["change", str(store), str(store), "--out", str(tmp_path / "d.tif")]):
        with pytest.raises(SystemExit) as e:
            main(["-q", *argv])
        assert e.value.code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "cross-validated" in out and "threshold" in out and "mean cosine distance 0.0000" in out


def test_overwrite_replaces_the_tools_own_outputs_and_nothing_else(store, tmp_path, capsys):
    """Re-running a tool with --overwrite replaces everything it wrote (few-shot sidecars, change
    table, report folder); a file of the user's in any of those places is refused, untouched."""
    ex = _features(tmp_path / "ex.geojson", LEFT + RIGHT)
    ref = _features(tmp_path / "ref.geojson", [(330200, 5821200, "green"), (331400, 5821200, "blue")])
    runs = {"fewshot": ["fewshot", str(store), "--examples", str(ex), "--out", str(tmp_path / "fs.tif")],
            "similar": ["similar", str(store), "--query", str(ex), "--out", str(tmp_path / "s.tif"),
                        "--mask-out", str(tmp_path / "m.tif")],
            "change": ["change", str(store), str(store), "--out", str(tmp_path / "d.tif"), "--classes", "green;blue",
                       "--changes-out", str(tmp_path / "c.tif"), "--table", str(tmp_path / "t.csv")],
            "accuracy": ["accuracy", str(tmp_path / "fs.tif"), "--reference", str(ref), "--out", str(tmp_path / "rep")]}

    def run(argv):
        with pytest.raises(SystemExit) as e:
            main(["-q", *argv])
        return e.value.code, capsys.readouterr().err

    for name, argv in runs.items():
        assert run(argv)[0] == 0, name
        assert run([*argv, "--overwrite"]) == (0, ""), name
    for user_file, name in ((tmp_path / "fs.examples.geojson", "fewshot"), (tmp_path / "fs.fewshot.json", "fewshot"),
                            (tmp_path / "t.csv", "change"), (tmp_path / "m.tif", "similar"),
                            (tmp_path / "rep" / "accuracy.json", "accuracy")):
        user_file.write_text('{"mine": true}\n')
        code, err = run([*runs[name], "--overwrite"])
        assert code == 2 and "nothing was touched" in err, (name, err)
        assert user_file.read_text() == '{"mine": true}\n'
        user_file.unlink()


def test_a_failed_mask_takes_the_similarity_raster_back(store, tmp_path, monkeypatch):
    """find-similar publishes the similarity raster, then the mask: if the mask fails, the run
    leaves neither."""
    import senclip.maps.gridraster as gr
    from senclip.tools.similarity import find_similar

    real = gr.write_grid_raster

    def failing(path, *a, **k):
        if str(path).endswith("mask.tif"):
            raise OSError("disk full")
        return real(path, *a, **k)

    monkeypatch.setattr(gr, "write_grid_raster", failing)
    q = _features(tmp_path / "q.geojson", LEFT[:1])
    with pytest.raises(OSError, match="disk full"):
        find_similar(store, tmp_path / "sim.tif", query=q, mask_out=tmp_path / "mask.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.geojson"]
