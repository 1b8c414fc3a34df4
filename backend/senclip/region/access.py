"""What reading a STAC item's assets needs beyond a URL: signing, paying, an S3 endpoint.

- **Planetary Computer.** Its assets live on Azure Blob Storage (``*.blob.core.windows.net``) and
  are read with a short-lived SAS token appended to the URL. Tokens come from the
  ``planetary-computer`` package (``planetary_computer.sign``; the token endpoint is its setting
  ``PC_SDK_SAS_URL``, a subscription key ``PC_SDK_SUBSCRIPTION_KEY`` is optional). Hrefs are
  signed on the worker right before a scene is read, never when the job is planned, so every
  scene of a long run gets a token that is fresh when its reading starts (the package caches a
  token and fetches a new one when less than a minute is left). Signed URLs are never written
  into records or manifests.
- **Requester-pays buckets** (Earth Search's ``sentinel-s2-l1c`` and the JP2 copies in
  ``sentinel-s2-l2a``; assets flagged by the storage extension). Reading them bills the reader's
  AWS account, so nothing is read unless the user said yes: ``AWS_REQUEST_PAYER=requester`` and
  AWS credentials in the environment of the workers.
- **Copernicus Data Space.** Its assets are ``s3://eodata/...`` on CDSE's own S3 endpoint (the
  storage extension names it); GDAL is pointed at it for the scene (``AWS_S3_ENDPOINT``,
  path-style addressing) unless the user set one, and needs CDSE S3 keys.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

from senclip.core.errors import BackendUnavailableError, InputError
from senclip.sentinel2.cloudmask import mask_source
from senclip.sentinel2.productfiles import S2CLOUDLESS_BANDS

BLOB_DOMAIN = ".blob.core.windows.net"
REQUESTER_PAYS_BUCKETS = frozenset({"sentinel-s2-l1c", "sentinel-s2-l2a"})  # Earth Search's (Sinergise's) JP2 buckets
# GDAL's network file systems -> the URL scheme they read (/vsis3/b/k is s3://b/k)
_VSI_NET = {"vsicurl": "", "vsis3": "s3://", "vsigs": "gs://", "vsiaz": "az://", "vsiadls": "az://",
            "vsioss": "oss://", "vsiswift": "swift://", "vsiwebhdfs": ""}
_S3_HOST = re.compile(r"^(?:(?P<bucket>.+)\.)?s3[.-](?:[a-z0-9-]+\.)*amazonaws\.com$")  # AWS S3 over https
PC_INSTALL = "pip install 'planetary-computer>=1.0' into the backend's environment (senclip[planetary])"
CDSE_KEYS = "https://eodata-s3keysmanager.dataspace.copernicus.eu"


def _url(path: str) -> str:
    return path[len("/vsicurl/"):] if path.startswith("/vsicurl/") else path


def needs_signing(path: str) -> bool:
    """Whether a GDAL path points at Azure Blob Storage without a SAS token (Planetary Computer)."""
    u = urlparse(_url(path))
    return u.scheme in ("http", "https") and u.netloc.endswith(BLOB_DOMAIN) and "sig=" not in u.query


def _schemes(item: dict) -> dict:
    return (item.get("properties") or {}).get("storage:schemes") or item.get("storage:schemes") or {}


def _marked_paid(asset: dict, item: dict) -> bool:
    """Whether the storage extension says reading the asset's storage bills the reader."""
    if asset.get("storage:requester_pays") is True:  # storage extension v1
        return True
    refs = [_schemes(item).get(r) or {} for r in asset.get("storage:refs") or []]
    return bool(refs) and all(r.get("requester_pays") is True for r in refs)  # v2: every way costs


def _target(path: str) -> str:
    """The URL or local path a GDAL path reads: ``/vsicurl/URL`` -> URL, ``/vsis3/b/k`` -> ``s3://b/k``,
    ``/vsizip/{x.zip}/inner`` and ``/vsizip/x.zip/inner`` -> x's own target, ``file://p`` -> p."""
    while path.startswith("/vsi"):
        prefix, _, rest = path[1:].partition("/")
        if prefix in _VSI_NET:
            return _VSI_NET[prefix] + rest
        path = rest[1:].partition("}")[0] if rest.startswith("{") else rest
    return path[len("file://"):] if path.startswith("file://") else path


def _bucket(url: str) -> str | None:
    """The bucket of an ``s3://``/``gs://`` URL or of an AWS S3 https address (virtual-hosted or path-style)."""
    u = urlparse(url)
    if u.scheme in ("s3", "gs"):
        return u.netloc or None
    m = _S3_HOST.match(u.netloc.lower()) if u.scheme in ("http", "https") else None
    return (m.group("bucket") or u.path.lstrip("/").partition("/")[0] or None) if m else None


def paid_bucket(href: str, asset: dict | None = None, item: dict | None = None) -> str | None:
    """The requester-pays bucket reading ``href`` bills the reader for, or None when it is free.

    It follows from where the href points: a local file (a path, ``file://``, a ``/vsizip/`` of
    one) is free whatever the item says (a download keeps the storage fields of what it copied); a
    remote one costs when it is in a known requester-pays bucket (``s3://``, ``/vsis3/`` or its
    https address) or the storage extension marks its storage so (``asset``, ``item``: the STAC
    dicts); any other URL (public COGs over https, open buckets) is free."""
    target = _target(href)
    scheme = urlparse(target).scheme
    if scheme in ("", "file") or len(scheme) == 1:  # a path (C:/ is a drive, not a scheme)
        return None
    bucket = _bucket(target)
    if bucket in REQUESTER_PAYS_BUCKETS or _marked_paid(asset or {}, item or {}):
        return bucket or urlparse(target).netloc
    return None


def _s3_endpoint(asset: dict, item: dict) -> str | None:
    """The S3 endpoint the storage extension names for an asset, when it is not AWS and free."""
    for ref in asset.get("storage:refs") or []:
        s = _schemes(item).get(ref) or {}
        host = urlparse(str(s.get("platform") or "")).netloc
        if s.get("type") == "custom-s3" and host and s.get("requester_pays") is not True:
            return host
    return None


def asset_needs(item: dict, used: dict[str, tuple[str, str, dict]]) -> dict:
    """What reading each asset a scene may use (``role -> (asset key, href, asset dict)``) needs beyond
    a URL, JSON-ready: ``role -> {"asset", "requester_pays": bucket, "s3_endpoint": host}`` for the
    roles that need something. Which of them a run reads is :func:`requirements`'."""
    out = {}
    for role, (key, href, asset) in used.items():
        need = {}
        if bucket := paid_bucket(href, asset, item):
            need["requester_pays"] = bucket
        if urlparse(href).scheme == "s3" and (endpoint := _s3_endpoint(asset, item)):
            need["s3_endpoint"] = endpoint
        if need:
            out[role] = dict(need, asset=key)
    return out


def assets_read(scene, cloud_mask=None) -> dict[str, str]:
    """``role -> GDAL path`` of every asset a run with ``--cloud-mask cloud_mask`` reads of a STAC scene:
    red, green and blue, and what the mask reads of the item (its SCL, or the L1C bands s2cloudless
    reads; nothing for ``none`` or a raster of your own). The mask's choice is the scene job's own
    (:func:`~senclip.sentinel2.cloudmask.mask_source`); the NIR band is never read."""
    read = {r: scene.assets[r] for r in ("red", "green", "blue")}
    source = mask_source(cloud_mask, has_scl=scene.scl is not None,
                         missing_bands=[b for b in S2CLOUDLESS_BANDS if b not in scene.cloud_bands])
    if source == "scl" and scene.scl is not None:
        read["scl"] = scene.scl
    if source == "s2cloudless":
        read.update({f"cloud:{b}": p for b, p in scene.cloud_bands.items()})
    return read


def requirements(scene, cloud_mask=None) -> dict:
    """What reading the assets this run reads needs (:func:`assets_read`), JSON-ready:
    ``requester_pays`` (buckets) with ``paid_assets`` (their asset keys, and whether they are all
    the cloud mask's), ``s3_endpoint``, ``signing``."""
    read = assets_read(scene, cloud_mask)
    needs = {r: scene.access[r] for r in read if r in (scene.access or {})}
    paid = {r: n for r, n in needs.items() if n.get("requester_pays")}
    out = {}
    if paid:
        out["requester_pays"] = sorted({n["requester_pays"] for n in paid.values()})
        out["paid_assets"] = sorted({n["asset"] for n in paid.values()})
        out["only_mask_paid"] = not paid.keys() & {"red", "green", "blue"}
    if endpoints := sorted({n["s3_endpoint"] for n in needs.values() if n.get("s3_endpoint")}):
        out["s3_endpoint"] = endpoints[0]
    if any(needs_signing(p) for p in read.values()):
        out["signing"] = "planetary-computer"
    return out


def _has_aws_credentials() -> bool:
    env = os.environ
    shared = Path(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    return bool(env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE") or shared.is_file())


def _payment_refused(scene, need: dict) -> InputError:
    """Which assets cost, and the ways out: pay, leave them unread (when only the mask reads them),
    or take the scene from elsewhere."""
    way_out = ("or leave them unread: they are the cloud mask's, so --cloud-mask none or a cloud-mask raster of "
               "your own (--cloud-mask FILE) maps the scene from its free bands" if need["only_mask_paid"] else
               "or use a free catalog of the same scenes (Earth Search sentinel-2-c1-l2a, Planetary Computer "
               "sentinel-2-l2a), or download the assets and map the local copy")
    return InputError(
        f"STAC item {scene.id!r}: this run reads the asset(s) {', '.join(need['paid_assets'])} from the "
        f"requester-pays bucket(s) {', '.join(need['requester_pays'])}, and reading them bills your AWS account. "
        "To accept, set AWS_REQUEST_PAYER=requester and AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
        f"or AWS_PROFILE) for the workers; {way_out}")


def gdal_options(scene, cloud_mask=None) -> dict:
    """GDAL settings the reads of this run (``--cloud-mask cloud_mask``) need (an S3 endpoint), or
    :class:`InputError` saying what the user must provide (paying for requester-pays buckets,
    credentials). Only the assets the run reads count (:func:`requirements`)."""
    need, opts = requirements(scene, cloud_mask), {}
    if need.get("requester_pays") and os.environ.get("AWS_REQUEST_PAYER", "").lower() != "requester":
        raise _payment_refused(scene, need)
    if need.get("s3_endpoint") and "AWS_S3_ENDPOINT" not in os.environ:
        opts.update(AWS_S3_ENDPOINT=need["s3_endpoint"], AWS_VIRTUAL_HOSTING="FALSE", AWS_HTTPS="YES")
    if need.get("s3_endpoint") and not _has_aws_credentials():
        raise InputError(f"STAC item {scene.id!r} is read from the S3 endpoint {need['s3_endpoint']}, which needs "
                         f"keys: create S3 keys (Copernicus Data Space: {CDSE_KEYS}) and set AWS_ACCESS_KEY_ID and "
                         "AWS_SECRET_ACCESS_KEY for the workers")
    return opts


def sign(path: str) -> str:
    """A GDAL path with a fresh Planetary Computer SAS token when it needs one, else unchanged."""
    if not needs_signing(path):
        return path
    try:
        import planetary_computer
    except ImportError:
        raise BackendUnavailableError(
            f"{_url(path)} is on Microsoft Planetary Computer's storage and must be signed, but the "
            f"planetary-computer package is not installed; {PC_INSTALL}") from None
    try:
        signed = planetary_computer.sign(_url(path))
    except Exception as e:  # noqa: BLE001 - HTTP errors of the token endpoint, bad URLs
        raise InputError(f"cannot sign {_url(path)} with the Planetary Computer token service "
                         f"({type(e).__name__}: {e}); check the network or PC_SDK_SUBSCRIPTION_KEY") from None
    return "/vsicurl/" + signed if path.startswith("/vsicurl/") else signed


def signed_paths(paths: dict) -> dict:
    """``paths`` (name -> GDAL path or None) with every Planetary Computer href signed."""
    return {k: (sign(v) if isinstance(v, str) else v) for k, v in paths.items()}
