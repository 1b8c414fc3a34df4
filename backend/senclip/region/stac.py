"""STAC in: static catalogs / ItemCollections (file or URL) and API searches (pystac-client).

Band assets are found the way the big catalogs name them (:mod:`.assets`: Earth Search's
``red``/``scl``, Planetary Computer's ``B04``/``SCL``, the Copernicus Data Space's ``B04_10m``/
``SCL_20m``, or band names and common names of STAC 1.0 ``eo:bands`` and 1.1 ``bands``); their
radiometry follows one rule (:mod:`.radiometry`). Relative hrefs are resolved against the
document; ``s3://`` and ``gs://`` become GDAL's ``/vsis3/`` and ``/vsigs/``, ``http(s)://`` is read
through ``/vsicurl/``. Planetary Computer signing, requester-pays buckets and CDSE's S3 endpoint
are :mod:`.access`'s; other credentials (``AWS_*``, ``GS_*``, ``GDAL_HTTP_HEADERS``...) are read by
GDAL from the environment of every worker (see docs/catalogs.md). An item that cannot be mapped
(no RGB assets, unreadable JSON) becomes a failed scene with its reason; the others go on.
"""
from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

from senclip.core.errors import InputError
from senclip.sentinel2.productfiles import S2CLOUDLESS_BANDS
from senclip.region import access, assets
from senclip.region.radiometry import item_radiometry
from senclip.region.scenes import SceneRef, safe_id, unique_ids

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


def _level(item) -> str | None:
    """L1C or L2A, from the product type, processing level, collection or id."""
    p = item.properties
    for text in (p.get("s2:product_type"), p.get("product:type"), item.collection_id, item.id):
        t = str(text or "").upper()
        if "L1C" in t or "MSI1C" in t:
            return "L1C"
        if "L2A" in t or "MSI2A" in t:
            return "L2A"
    return {"L1": "L1C", "L2": "L2A"}.get(str(p.get("processing:level") or "").upper())


def _sun(props: dict) -> dict | None:
    """The item's mean sun angles (Earth Search and CDSE: ``view:sun_*``; Planetary Computer: ``s2:mean_solar_*``)."""
    try:
        if props.get("view:sun_elevation") is not None and props.get("view:sun_azimuth") is not None:
            return {"zenith": 90.0 - float(props["view:sun_elevation"]), "azimuth": float(props["view:sun_azimuth"]),
                    "source": "STAC item view:sun_elevation/view:sun_azimuth"}
        if props.get("s2:mean_solar_zenith") is not None and props.get("s2:mean_solar_azimuth") is not None:
            return {"zenith": float(props["s2:mean_solar_zenith"]), "azimuth": float(props["s2:mean_solar_azimuth"]),
                    "source": "STAC item s2:mean_solar_zenith/s2:mean_solar_azimuth"}
    except (TypeError, ValueError):
        pass
    return None


def _absolute(asset) -> str:
    """An asset's href made absolute. A URL or an absolute local path (a downloaded copy's) is taken as
    written: pystac would join a path onto the item's remote ``self`` link (``https://host/data/B04.tif``);
    a relative one is resolved against where the item is."""
    h = asset.href
    if "://" in h or PurePosixPath(h).is_absolute() or PureWindowsPath(h).is_absolute():
        return h
    return asset.get_absolute_href() or h


def item_to_scene(item) -> SceneRef:
    """A :class:`SceneRef` for a pystac Item, or :class:`InputError` naming the missing bands."""
    raw = {k: a.to_dict() for k, a in item.get_assets().items()}
    href = {k: _absolute(item.assets[k]) for k in raw}
    keys = {role: k for role, band in assets.ROLES.items() if (k := assets.find(raw, band))}
    missing = [r for r in REQUIRED if r not in keys]
    if missing:
        raise InputError(f"STAC item {item.id!r} has no {'/'.join(missing)} asset (looked for "
                         f"{'; '.join(assets.looked_for(assets.ROLES[r]) for r in missing)}); is it a Sentinel-2 item?")
    rad = item_radiometry(item.id, {r: raw[keys[r]] for r in REQUIRED}, item.properties)
    level = _level(item)
    cloud = {b: k for b in S2CLOUDLESS_BANDS if (k := assets.find(raw, b))} if level == "L1C" else {}
    used = {role: (k, href[k], raw[k]) for role, k in [*keys.items(), *((f"cloud:{b}", k) for b, k in cloud.items())]}
    dt = item.properties.get("datetime") or item.properties.get("start_datetime")
    meta = dict(item.extra_fields, properties=item.properties)
    return SceneRef(id=safe_id(item.id), kind="stac",
                    assets={r: gdal_path(href[keys[r]]) for r in ("blue", "green", "red", "nir") if r in keys},
                    scl=gdal_path(href[keys["scl"]]) if "scl" in keys else None, datetime=dt,
                    offset=rad["offset"], scale=rad["scale"], radiometry=rad, level=level,
                    cloud_bands={b: gdal_path(href[k]) for b, k in cloud.items()}, sun=_sun(item.properties),
                    access=access.asset_needs(meta, used),
                    properties={k: item.properties.get(k) for k in ("eo:cloud_cover", "updated", "platform",
                                                                   "s2:processing_baseline") if k in item.properties})


def failed_scene(item_id, error: Exception) -> SceneRef:
    """A scene for an item that cannot be mapped: recorded as failed with the reason, the rest go on."""
    msg = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
    return SceneRef(id=safe_id(str(item_id or "item")), kind="stac", error=msg)


def _scenes(items) -> list[SceneRef]:
    out = []
    for it in items:
        try:
            out.append(item_to_scene(it))
        except Exception as e:  # noqa: BLE001 - one bad item fails alone
            out.append(failed_scene(it.id, e))
    return out


def load_static(href: str) -> list[SceneRef]:
    """Scenes of a STAC ItemCollection, Item, Catalog or Collection (file or URL), every item
    below a catalog included."""
    import warnings

    with warnings.catch_warnings():  # pystac's storage-extension migration warns about Earth Search's hrefs
        warnings.filterwarnings("ignore", message="Could not parse bucket", category=UserWarning)
        return _load_static(href)


def _load_static(href: str) -> list[SceneRef]:
    import pystac

    try:
        d = pystac.StacIO.default().read_json(href)
    except Exception as e:  # noqa: BLE001 - file, HTTP and JSON errors alike
        raise InputError(f"cannot read STAC document {href!r} ({type(e).__name__}: {e})") from None
    kind = d.get("type")
    try:
        if kind == "FeatureCollection":
            items = []
            for n, f in enumerate(d.get("features") or [], start=1):
                try:
                    it = pystac.Item.from_dict(f, preserve_dict=False)
                except Exception as e:  # noqa: BLE001 - one unreadable item fails alone
                    items.append(failed_scene((f.get("id") if isinstance(f, dict) else None) or f"item_{n}",
                                              InputError(f"STAC item {n} of {href!r} cannot be read "
                                                         f"({type(e).__name__}: {e})")))
                    continue
                for a in it.assets.values():  # relative hrefs are relative to the document
                    if "://" not in a.href and not a.href.startswith("/"):
                        a.href = _join(href, a.href)
                items.append(it)
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
    return unique_ids([i if isinstance(i, SceneRef) else _scenes([i])[0] for i in items])


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
    return unique_ids(_scenes(items))
