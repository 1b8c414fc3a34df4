"""``senclip map-region`` on Dask distributed with real Sentinel-2 scenes cut into STAC items.

The command's own LocalCluster (2 worker processes, made by the same function the command uses
when no --scheduler is given) is shared by the tests of this module and reached with --scheduler,
so each worker process imports torch once per module. A tiny random model runs: only the
mechanics are checked (scenes found, tasks, retries, overlap rule, areas, resume, failures),
never accuracy.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

import region_data as rd
from senclip.cli.main import main
from senclip.maps.geotiff import CLOUD_VALUE
from senclip.region import map_region
from senclip.region.mosaic import build_mosaic, combine
from stac_server import StacServer

pytestmark = pytest.mark.real_data
CLASSES = "Forest;Sea or Lake;Annual Crop Land"
K = 3
BERLIN = ["berlin_a", "berlin_b", "berlin_c"]


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    root = tmp_path_factory.mktemp("stac")
    return root, rd.build_items(root)


@pytest.fixture(scope="module")
def cluster():
    from senclip.region.job import _cluster

    client, c = _cluster(None, 2, 1, dashboard=False)
    yield c
    client.close()
    c.close()


def run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(["-q", "map-region", *map(str, args)])
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def common(ckpt):
    return ["--classes", CLASSES, "--checkpoint", ckpt, "--device", "cpu", "--retries", "0"]


def read_band(path, band=1):
    with rasterio.open(path) as ds:
        return ds.read(band), ds.transform


def expected_confidence_rule(obs):
    """Reference for the default rule, pixel by pixel: highest confidence, then most votes, then
    the lower class; cloud only where nothing real was seen."""
    real = [(int(c), int(p)) for c, p in obs if 1 <= c <= K]
    if not real:
        return CLOUD_VALUE if any(c == CLOUD_VALUE for c, _ in obs) else 0
    votes = {c: sum(1 for x, _ in real if x == c) for c, _ in real}
    return sorted(real, key=lambda o: (-o[1], -votes[o[0]], o[0]))[0][0]


# --- the overlap rule, on arrays -----------------------------------------------------------------
def test_overlap_rules_and_cloud():
    cls = np.array([[[1, 255, 0, 2, 255, 1]],
                    [[2, 3, 0, 2, 255, 1]],
                    [[2, 255, 255, 3, 0, 2]]], dtype=np.uint8)
    conf = np.array([[[90, 0, 0, 40, 0, 50]],
                     [[60, 10, 0, 45, 0, 50]],
                     [[70, 0, 0, 99, 0, 50]]], dtype=np.uint8)
    c, p, a = combine(cls, conf, K, "confidence")
    assert c[0].tolist() == [1, 3, 255, 3, 255, 1]  # cloud loses to class 3 at 10 %; all-cloud stays cloud
    assert p[0].tolist() == [90, 10, 0, 99, 0, 50]
    assert a[0].tolist() == [33, 100, 0, 33, 0, 67]
    m, _, _ = combine(cls, conf, K, "majority")
    assert m[0].tolist() == [2, 3, 255, 2, 255, 1]  # two dates said 2; the 1/2 tie at equal confidence: more votes
    for i in range(cls.shape[2]):
        assert c[0, i] == expected_confidence_rule(list(zip(cls[:, 0, i], conf[:, 0, i])))


def test_mosaic_of_synthetic_maps_with_cloud(tmp_path):
    """Two maps on one grid, shifted by 2 columns; cloud in one loses to the other's class."""
    from rasterio.transform import from_origin

    a = np.zeros((3, 4, 6), np.uint8)
    a[0] = 1
    a[0, :, 4:] = CLOUD_VALUE
    a[1] = 80
    b = np.zeros((3, 4, 6), np.uint8)
    b[0], b[1] = 2, 30
    paths = []
    for name, arr, x0 in (("a", a, 0), ("b", b, 640)):
        p = tmp_path / f"{name}.tif"
        with rasterio.open(p, "w", driver="GTiff", width=6, height=4, count=3, dtype="uint8", nodata=0,
                           crs="EPSG:32633", transform=from_origin(330000 + x0, 5822000, 320, 320)) as ds:
            ds.write(arr)
        paths.append(p)
    res = build_mosaic(paths, ["A", "B", "C"], tmp_path, work=tmp_path)
    cls, t = read_band(res.path)
    assert (res.width, res.height) == (8, 4) and t.c == 330000
    assert (cls[:, :2] == 1).all()  # only a
    assert (cls[:, 2:4] == 1).all()  # a (80 %) beats b (30 %)
    assert (cls[:, 4:6] == 2).all()  # a's cloud loses to b's class
    assert (cls[:, 6:] == 2).all()  # only b
    assert res.area_m2 == {"A": 16 * 320**2, "B": 16 * 320**2, "C": 0.0}
    view, vt = read_band(res.vrt)  # the quick view: the last listed (newest) map shows where they overlap
    assert vt == t and view[0].tolist() == [1, 1, 2, 2, 2, 2, 2, 2]


# --- whole runs ----------------------------------------------------------------------------------
def test_static_catalog_on_local_cluster_then_resume(items, tmp_path, tiny_checkpoint, cluster, capsys):
    root, its = items
    cat = rd.write_catalog(root, its, ids=BERLIN)
    out = tmp_path / "out"
    code, stdout, err = run([cat, "--out", out, "--scheduler", cluster.scheduler_address, *common(tiny_checkpoint)],
                            capsys)
    assert code == 0, err
    man = json.loads((out / "manifest.json").read_text())
    recs = {r["id"]: r for r in man["scenes"]}
    assert set(recs) == set(BERLIN) and all(r["status"] == "done" for r in recs.values())
    assert man["summary"]["done"] == 3 and man["cluster"]["workers"] == 2
    assert man["cluster"]["dashboard"].startswith("http://")  # an existing scheduler's dashboard is announced
    # one model per worker process: each process loaded it at most once
    loads = [r["pid"] for r in recs.values() if r["model_loaded_here"]]
    assert len(loads) == len(set(loads)) and len(loads) <= 2
    assert all(r["prompts"] and r["model"]["model_id"] == "checkpoint:tiny_vit.ckpt" for r in recs.values())
    assert all(r["source"]["kind"] == "stac" and r["source"]["assets"]["red"].endswith("B04.tif") for r in recs.values())

    maps = {i: read_band(out / "scenes" / f"{i}.tif") for i in BERLIN}
    confs = {i: read_band(out / "scenes" / f"{i}.tif", 2)[0] for i in BERLIN}
    mosaic, mt = read_band(out / "mosaic.tif")
    for i in BERLIN:
        with rasterio.open(out / "scenes" / f"{i}.tif") as ds:
            assert ds.tags()["SENCLIP_MODEL"] == "checkpoint:tiny_vit.ckpt"
    # grids: a and c at column 0, b 20 grid columns (640 px / stride 32) east
    off = {i: round((maps[i][1].c - mt.c) / mt.a) for i in BERLIN}
    assert off == {"berlin_a": 0, "berlin_b": 20, "berlin_c": 0} and mosaic.shape == (8, 48)
    # where one scene alone covers the mosaic it is copied exactly
    assert np.array_equal(mosaic[:, 28:], maps["berlin_b"][0][:, 8:])
    # where scenes overlap the rule decides
    for r in range(8):
        for c in range(28):
            obs = [(maps[i][0][r, c - off[i]], confs[i][r, c - off[i]]) for i in BERLIN if 0 <= c - off[i] < 28]
            assert mosaic[r, c] == expected_confidence_rule(obs), (r, c, obs)
    # areas: every mosaic pixel once, 320 m x 320 m (same UTM zone), no double counting of overlaps
    m = man["mosaic"]
    classified = int(((mosaic >= 1) & (mosaic <= K)).sum())
    assert sum(m["area_m2"].values()) == pytest.approx(classified * 320.0**2)
    assert sum(m["area_m2"].values()) < sum(sum(r["area_m2"].values()) for r in recs.values())
    assert not (out / ".senclip-work").exists()

    # the same command again, without --scheduler: every scene is skipped, so no cluster is even
    # started (a LocalCluster would be), and nothing is rewritten
    stamps = {p: p.stat().st_mtime_ns for p in (out / "scenes").iterdir()}
    stamps[out / "mosaic.tif"] = (out / "mosaic.tif").stat().st_mtime_ns
    code, stdout, err = run([cat, "--out", out, "--workers", 2, "--no-dashboard", *common(tiny_checkpoint)], capsys)
    assert code == 0, err
    man2 = json.loads((out / "manifest.json").read_text())
    assert man2["summary"]["skipped"] == 3 and man2["cluster"]["scheduler"] is None
    assert all(r["resumed"] for r in man2["scenes"])
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    assert "3 scene(s) mapped (3 already done)" in stdout


def test_stac_api_search_reads_cogs_over_http(items, tmp_path, tiny_checkpoint, cluster, capsys):
    root, its = items
    with StacServer(root, []) as srv:
        srv.items = rd.with_base(its, srv.url)
        va = next(i for i in its if i["id"] == "virginia_a")["bbox"]
        # the western half of the Virginia item: Berlin items are outside, and only part of each COG is read
        bbox = [va[0] + 0.001, va[1] + 0.001, (va[0] + va[2]) / 2, va[3] - 0.001]
        out = tmp_path / "out"
        code, stdout, err = run(["--stac", srv.url, "--collection", "sentinel-2-l1c", "--bbox", ",".join(map(str, bbox)),
                                 "--datetime", "2016-01-01/2016-12-31", "--max-cloud", 20, "--out", out,
                                 "--scheduler", cluster.scheduler_address, *common(tiny_checkpoint)], capsys)
        assert code == 0, err
        assert srv.searches and srv.searches[-1]["query"] == {"eo:cloud_cover": {"lt": 20.0}}
        served = dict(srv.bytes_served)
        code2, _, err2 = run(["--stac", srv.url, "--collection", "sentinel-2-l1c", "--bbox", ",".join(map(str, bbox)),
                              "--max-cloud", 8, "--out", tmp_path / "none", "--scheduler", cluster.scheduler_address,
                              *common(tiny_checkpoint)], capsys)
    man = json.loads((out / "manifest.json").read_text())
    assert [r["id"] for r in man["scenes"]] == ["virginia_a"] and man["scenes"][0]["status"] == "done"
    assert man["scenes"][0]["source"]["assets"]["red"] == f"/vsicurl/{srv.url}virginia_a/B04.tif"
    for band in ("B04", "B03", "B02"):
        size = (root / "virginia_a" / f"{band}.tif").stat().st_size
        assert 0 < served[f"virginia_a/{band}.tif"] < size  # windowed: never the whole file
    assert not any(k.startswith("berlin") for k in served)
    with rasterio.open(out / "scenes" / "virginia_a.tif") as ds:
        assert ds.crs.to_epsg() == 32618 and ds.width == 8  # 256 of 512 px at stride 32
    assert code2 == 2 and "found no scenes" in err2  # eo:cloud_cover 10 is not below 8


def _kill_first_busy_worker(cluster, done: dict, stop: threading.Event):
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)
        done["before"] = set(pids.values())
        while not stop.is_set():
            for worker, keys in client.processing().items():
                if any(str(k).startswith("senclip-scene") for k in keys) and worker in pids:
                    os.kill(pids[worker], signal.SIGKILL)
                    done["killed"] = pids[worker]
                    return
            time.sleep(0.005)


def test_worker_killed_mid_task_costs_only_that_task(items, tmp_path, tiny_checkpoint, cluster):
    root, its = items
    cat = rd.write_catalog(root, its, ids=BERLIN)
    state, stop = {}, threading.Event()
    killer = threading.Thread(target=_kill_first_busy_worker, args=(cluster, state, stop), daemon=True)
    killer.start()
    time.sleep(1.0)  # the killer knows the worker pids before the first task starts
    try:
        res = map_region([cat], tmp_path / "out", scheduler=cluster.scheduler_address, classes=CLASSES,
                         checkpoint=str(tiny_checkpoint), device="cpu", retries=0)
    finally:
        stop.set()
        killer.join(5)
    assert "killed" in state, "no worker was killed: the test did not test anything"
    assert (res.done, res.failed) == (3, 0)
    assert all((tmp_path / "out" / "scenes" / f"{i}.tif").is_file() for i in BERLIN)
    assert state["killed"] not in {r["pid"] for r in res.scenes}  # its task was redone elsewhere
    assert not (tmp_path / "out" / ".senclip-work").exists()
    assert not [p for p in (tmp_path / "out" / "scenes").iterdir() if p.name.startswith(".")]


def _geotiff(src_items_root: Path, item: str, dst: Path):
    """A 4-band GeoTIFF (B02, B03, B04, B08) of one item, as a scene file."""
    bands = []
    for b in ("B02", "B03", "B04", "B08"):
        with rasterio.open(src_items_root / item / f"{b}.tif") as ds:
            bands.append(ds.read(1))
            prof = ds.profile
    prof.update(driver="GTiff", count=4)
    with rasterio.open(dst, "w", **{k: v for k, v in prof.items() if k not in ("blockxsize", "blockysize", "tiled")}) as ds:
        ds.write(np.stack(bands))


def test_corrupt_scene_fails_alone_and_rerun_redoes_only_it(items, tmp_path, tiny_checkpoint, cluster, capsys):
    root, _ = items
    scenes = tmp_path / "scenes_in"
    scenes.mkdir()
    _geotiff(root, "berlin_a", scenes / "S2A_20170216T102101_a.tif")
    _geotiff(root, "berlin_b", scenes / "S2A_20170308T102101_b.tif")
    _geotiff(root, "berlin_c", scenes / "S2A_20170417T102101_c.tif")
    good = (scenes / "S2A_20170417T102101_c.tif").read_bytes()
    (scenes / "S2A_20170417T102101_c.tif").write_bytes(good[: len(good) // 3])  # truncated
    out = tmp_path / "out"
    args = [scenes, "--out", out, "--scheduler", cluster.scheduler_address, *common(tiny_checkpoint)]
    code, stdout, err = run(args, capsys)
    assert code == 3, err
    man = json.loads((out / "manifest.json").read_text())
    st = {r["id"]: r for r in man["scenes"]}
    assert st["S2A_20170417T102101_c"]["status"] == "failed"
    assert "S2A_20170417T102101_c" in st["S2A_20170417T102101_c"]["error"]
    assert "FAILED S2A_20170417T102101_c" in stdout and "1 of 3 scene(s) failed" in err
    assert [st[i]["status"] for i in ("S2A_20170216T102101_a", "S2A_20170308T102101_b")] == ["done", "done"]
    assert st["S2A_20170216T102101_a"]["source"]["datetime"] == "2017-02-16T10:21:01Z"
    assert (out / "mosaic.tif").is_file() and not (out / "scenes" / "S2A_20170417T102101_c.tif").exists()
    finished = {i: st[i]["finished"] for i in ("S2A_20170216T102101_a", "S2A_20170308T102101_b")}

    (scenes / "S2A_20170417T102101_c.tif").write_bytes(good)  # repaired: only this scene is redone
    code, stdout, err = run(args, capsys)
    assert code == 0, err
    st = {r["id"]: r for r in json.loads((out / "manifest.json").read_text())["scenes"]}
    assert all(r["status"] == "done" for r in st.values())
    assert {i: st[i]["finished"] for i in finished} == finished and all(st[i]["resumed"] for i in finished)
    assert not st["S2A_20170417T102101_c"].get("resumed")


def test_sigterm_stops_own_cluster_and_leaves_only_complete_outputs(items, tmp_path, tiny_checkpoint):
    """SIGTERM while the command's own LocalCluster works: exit 143 (as every senclip command), worker processes gone, no
    staging left, and every scene map present is complete (has its record)."""
    import subprocess
    import sys

    import psutil

    root, its = items
    cat = rd.write_catalog(root, its, ids=BERLIN)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "senclip.cli.main", "-q", "map-region", str(cat), "--out", str(out),
                             "--workers", "1", "--no-dashboard", *map(str, common(tiny_checkpoint))],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / "manifest.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the manifest is written once the tasks are submitted
    assert proc.poll() is None, proc.communicate()
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "no cluster processes were started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted" in err
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"cluster processes still running: {alive}"
    assert not (out / ".senclip-work").exists()
    for tif in (out / "scenes").glob("*.tif"):
        assert json.loads(tif.with_suffix(".json").read_text())["status"] == "done"
    assert not [p for p in (out / "scenes").iterdir() if p.name.startswith(".")]


def test_scene_discovery_from_folders_globs_and_products(tmp_path):
    """Products are handed to the scene opener as they are: .SAFE folders, .SAFE.zip, band folders,
    GeoTIFFs; hidden entries (our own staging) are never scenes."""
    from senclip.core.errors import InputError
    from senclip.region.sources import discover

    d = tmp_path / "products"
    (d / "S2B_MSIL2A_20240701T101559_N0510_R065_T32UPU_20240701T130000.SAFE").mkdir(parents=True)
    (d / "S2A_MSIL1C_20240611T101601_N0510_R065_T32UPU_20240611T120000.SAFE.zip").write_bytes(b"")
    (d / "bands").mkdir()
    for b in ("B02", "B03", "B04"):
        (d / "bands" / f"T32UPU_20240621T101559_{b}.jp2").write_bytes(b"")
    (d / "cog_20240630T101559.tif").write_bytes(b"")
    (d / ".senclip-work").mkdir()
    (d / "notes.txt").write_text("x")
    got = {s.id: s for s in discover([d])}
    assert set(got) == {"S2B_MSIL2A_20240701T101559_N0510_R065_T32UPU_20240701T130000",
                        "S2A_MSIL1C_20240611T101601_N0510_R065_T32UPU_20240611T120000", "bands", "cog_20240630T101559"}
    assert got["cog_20240630T101559"].datetime == "2024-06-30T10:15:59Z"
    assert got["bands"].path == str(d / "bands")
    assert [s.id for s in discover([str(d / "*.tif"), d / "cog_20240630T101559.tif"])] == ["cog_20240630T101559"]
    with pytest.raises(InputError, match="matches no file"):
        discover([str(d / "*.jp2")])
    with pytest.raises(InputError, match="no Sentinel-2 scenes"):
        discover([d / ".senclip-work"])


def test_stac_assets_by_key_or_common_name():
    import pystac

    from senclip.core.errors import InputError
    from senclip.region.stac import item_to_scene

    def item(assets, props=None):
        it = pystac.Item("T32UPU_x", None, None, pystac.utils.str_to_datetime("2024-07-01T10:00:00Z"),
                         dict({"s2:processing_baseline": "05.10"}, **(props or {})))
        for k, (href, common) in assets.items():
            it.add_asset(k, pystac.Asset(href, media_type="image/tiff; application=geotiff",
                                         extra_fields={"eo:bands": [{"name": k, "common_name": common}]} if common else {}))
        return it

    pc = item_to_scene(item({"B04": ("https://x/B04.tif", None), "B03": ("https://x/B03.tif", None),
                             "B02": ("s3://bucket/B02.tif", None), "SCL": ("https://x/SCL.tif", None)}))
    assert pc.assets == {"red": "/vsicurl/https://x/B04.tif", "green": "/vsicurl/https://x/B03.tif",
                         "blue": "/vsis3/bucket/B02.tif"}
    assert pc.scl == "/vsicurl/https://x/SCL.tif" and (pc.offset, pc.scale) == (-1000.0, 10000.0)
    odd = item_to_scene(item({"band_4": ("https://x/4.tif", "red"), "band_3": ("https://x/3.tif", "green"),
                              "band_2": ("https://x/2.tif", "blue")}))
    assert odd.assets["red"].endswith("4.tif") and odd.assets["blue"].endswith("2.tif")
    with pytest.raises(InputError, match="no blue asset"):
        item_to_scene(item({"red": ("https://x/4.tif", "red"), "green": ("https://x/3.tif", "green")}))


def test_stac_scene_is_cloud_masked_with_its_scl_asset(items, tmp_path, tiny_checkpoint, cluster, capsys):
    """A STAC item's SCL asset (20 m, another file than the bands) masks its scene: the cells under
    a block of 'cloud high probability' (SCL 9) become the cloud class, the rest is classified."""
    import copy

    root, its = items
    item = copy.deepcopy(next(i for i in its if i["id"] == "berlin_a"))
    item["id"] = "berlin_a_scl"
    with rasterio.open(root / item["assets"]["red"]["href"]) as ds:
        crs, t, w, h = ds.crs, ds.transform, ds.width, ds.height
    scl = np.full((h // 2, w // 2), 4, dtype=np.uint8)  # 20 m: vegetation everywhere ...
    scl[:, : w // 4] = 9  # ... but cloud over the left half
    (root / item["id"]).mkdir(exist_ok=True)
    for a in item["assets"].values():  # the item's own folder holds its files (as write_catalog expects)
        src = root / a["href"]
        a["href"] = f"{item['id']}/{src.name}"
        (root / a["href"]).write_bytes(src.read_bytes())
    rd.write_cog(root / item["id"] / "SCL.tif", scl, crs, t * t.scale(2))
    item["assets"]["scl"] = {"href": f"{item['id']}/SCL.tif", "type": "image/tiff", "roles": ["data"]}
    cat = rd.write_catalog(root, [item])
    out = tmp_path / "out"
    code, _, err = run([cat, "--out", out, "--scheduler", cluster.scheduler_address, *common(tiny_checkpoint)],
                       capsys)
    assert code == 0, err
    cls, _ = read_band(out / "scenes" / "berlin_a_scl.tif")
    half = cls.shape[1] // 2
    assert (cls[:, : half - 1] == CLOUD_VALUE).all()  # every cell whose chips touch the cloud
    right = cls[:, half + 1:]
    assert ((right >= 1) & (right <= K)).all()  # clear land is classified, not masked
    rec = json.loads((out / "scenes" / "berlin_a_scl.json").read_text())
    assert rec["source"]["scl"].endswith("SCL.tif")


def test_remote_gdal_settings_stay_inside_the_stac_read():
    """EMPTY_DIR set process-wide would hide every local sidecar read afterwards (the class maps'
    .aux.xml palettes and nodata): the region job may only set it while it reads a STAC scene."""
    import senclip.region.task  # noqa: F401

    assert "GDAL_DISABLE_READDIR_ON_OPEN" not in os.environ
