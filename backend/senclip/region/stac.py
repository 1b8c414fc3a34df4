"""STAC in: static catalogs / ItemCollections (file or URL) and API searches (pystac-client).

Band assets are found the way the big catalogs name them: by key (Earth Search: ``red``,
``green``, ``blue``, ``nir``, ``scl``; Planetary Computer and CDSE: ``B04``, ``B03``, ``B02``,
``B08``, ``SCL``), else by the ``eo:bands`` common name of the asset (as odc-stac does).
Relative hrefs are resolved against the document; ``s3://`` and ``gs://`` become GDAL's
``/vsis3/`` and ``/vsigs/``, ``http(s)://`` is read through ``/vsicurl/``. Credentials and signing
are GDAL's business: ``AWS_*``, ``GS_*``, ``AZURE_*``, ``GDAL_HTTP_HEADERS`` and friends are read
from the environment of every worker (see README, "Regional maps").
"""
from __future__ import annotations

from senclip.core.errors import InputError
from senclip.region.sources import SceneRef, safe_id, unique_ids

ROLES = {  # role -> asset keys, in order of preference
    "red": ("red", "B04", "b04", "B4"),
    "green": ("green", "B03", "b03", "B3"),
    "blue": ("blue", "B02", "b02", "B2"),
    "nir": ("nir", "B08", "b08", "B8", "nir08"),
    "scl": ("scl", "SCL"),
}
REQUIRED = ("red", "green", "blue")


def gdal_path(href: str) -> str:
    """An asset href as a path GDAL opens without downloading the file."""
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    if href.startswith("s3://"):
        return "/vsis3/" + href[5:]
    if href.startswith("gs://"):
        return "/vsigs/" + href[5:]
    if href.startswith("file://"):
        return href[7:]
    return href


def _by_common_name(assets: dict, role: str) -> str | None:
    for key, a in assets.items():
        bands = a.extra_fields.get("eo:bands") or []
        if len(bands) == 1 and bands[0].get("common_name") == role and _is_raster(a):
            return key
    return None


def _is_raster(asset) -> bool:
    t = (asset.media_type or "").lower()
    return not t or "tiff" in t or "jp2" in t or "jpeg2000" in t


def _radiometry(asset, props: dict) -> tuple[float | None, float | None]:
    """(offset in DN, DNs per unit reflectance) from ``raster:bands`` or the processing baseline."""
    rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
    if rb.get("scale"):
        scale = 1.0 / float(rb["scale"])
        return float(rb.get("offset", 0.0)) * scale, scale
    baseline = props.get("s2:processing_baseline")
    if baseline:
        try:
            return (-1000.0 if float(baseline) >= 4.0 else 0.0), 10000.0
        except ValueError:
            pass
    return None, None


def item_to_scene(item) -> SceneRef:
    """A :class:`SceneRef` for a pystac Item, or :class:`InputError` naming the missing bands."""
    assets = item.get_assets()
    keys: dict[str, str] = {}
    for role, names in ROLES.items():
        key = next((k for k in names if k in assets and _is_raster(assets[k])), None) or _by_common_name(assets, role)
        if key:
            keys[role] = key
    found = {r: assets[k].get_absolute_href() or assets[k].href for r, k in keys.items()}
    missing = [r for r in REQUIRED if r not in found]
    if missing:
        raise InputError(f"STAC item {item.id!r} has no {'/'.join(missing)} asset (looked for keys "
                         f"{', '.join(k for r in missing for k in ROLES[r][:2])} and eo:bands common names); "
                         "is it a Sentinel-2 item?")
    offset, scale = _radiometry(assets[keys["red"]], item.properties)
    dt = item.properties.get("datetime") or item.properties.get("start_datetime")
    return SceneRef(id=safe_id(item.id), kind="stac",
                    assets={r: gdal_path(found[r]) for r in ("blue", "green", "red", "nir") if r in found},
                    scl=gdal_path(found["scl"]) if "scl" in found else None, datetime=dt, offset=offset, scale=scale,
                    properties={k: item.properties.get(k) for k in ("eo:cloud_cover", "updated", "platform",
                                                                   "s2:processing_baseline") if k in item.properties})


def load_static(href: str) -> list[SceneRef]:
    """Scenes of a STAC ItemCollection, Item, Catalog or Collection (file or URL), every item
    below a catalog included."""
    import pystac

    try:
        d = pystac.StacIO.default().read_json(href)
    except Exception as e:  # noqa: BLE001 - file, HTTP and JSON errors alike
        raise InputError(f"cannot read STAC document {href!r} ({type(e).__name__}: {e})") from None
    kind = d.get("type")
    try:
        if kind == "FeatureCollection":
            items = list(pystac.ItemCollection.from_dict(d, preserve_dict=False))
            for it in items:  # relative hrefs are relative to the document
                for a in it.assets.values():
                    if "://" not in a.href and not a.href.startswith("/"):
                        a.href = _join(href, a.href)
        elif kind == "Feature":
            items = [pystac.Item.from_file(href)]
        elif kind in ("Catalog", "Collection"):
            items = list(pystac.read_file(href).get_items(recursive=True))
        else:
            raise InputError(f"{href!r} is not a STAC ItemCollection, Item, Catalog or Collection (type {kind!r})")
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise InputError(f"cannot read STAC document {href!r} ({type(e).__name__}: {e})") from None
    if not items:
        raise InputError(f"STAC document {href!r} holds no items")
    return unique_ids([item_to_scene(i) for i in items])


def _join(base: str, rel: str) -> str:
    from urllib.parse import urljoin

    if "://" in base:
        return urljoin(base, rel)
    from pathlib import Path

    return str((Path(base).resolve().parent / rel).resolve())


def search(url: str, *, collection: str | None, bbox=None, datetime: str | None = None,
           max_cloud: float | None = None, limit: int | None = None) -> list[SceneRef]:
    """Scenes from a STAC API search with pystac-client (``eo:cloud_cover`` below ``max_cloud``:
    asked of the server through the query extension when it has it, and checked here in any case)."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    try:
        client = Client.open(url)
    except Exception as e:  # noqa: BLE001 - network and protocol errors alike
        raise InputError(f"cannot open STAC API {url!r} ({type(e).__name__}: {e})") from None
    kw = {"collections": [collection] if collection else None, "bbox": bbox, "datetime": datetime,
          "max_items": limit}
    if max_cloud is not None and client.conforms_to("QUERY"):
        kw["query"] = {"eo:cloud_cover": {"lt": max_cloud}}
    try:
        items = list(client.search(**{k: v for k, v in kw.items() if v is not None}).items())
    except APIError as e:
        raise InputError(f"STAC search at {url!r} failed: {e}") from None
    if max_cloud is not None:
        items = [i for i in items if float(i.properties.get("eo:cloud_cover", 0.0)) < max_cloud]
    if not items:
        raise InputError(f"the STAC search at {url} found no scenes (collection {collection}, bbox {bbox}, "
                         f"datetime {datetime}, max cloud {max_cloud}); widen the search")
    return unique_ids([item_to_scene(i) for i in items])
