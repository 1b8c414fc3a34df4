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
from pathlib import Path
from urllib.parse import urlparse

from senclip.core.errors import BackendUnavailableError, InputError

BLOB_DOMAIN = ".blob.core.windows.net"
REQUESTER_PAYS_BUCKETS = frozenset({"sentinel-s2-l1c", "sentinel-s2-l2a"})  # Earth Search's (Sinergise's) JP2 buckets
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


def _requester_pays(href: str, asset: dict, item: dict) -> bool:
    if asset.get("storage:requester_pays") is True:  # storage extension v1
        return True
    refs = [_schemes(item).get(r) or {} for r in asset.get("storage:refs") or []]
    if refs and all(r.get("requester_pays") is True for r in refs):  # storage extension v2: every way costs
        return True
    u = urlparse(href)
    return u.scheme == "s3" and u.netloc in REQUESTER_PAYS_BUCKETS


def _s3_endpoint(asset: dict, item: dict) -> str | None:
    """The S3 endpoint the storage extension names for an asset, when it is not AWS and free."""
    for ref in asset.get("storage:refs") or []:
        s = _schemes(item).get(ref) or {}
        host = urlparse(str(s.get("platform") or "")).netloc
        if s.get("type") == "custom-s3" and host and s.get("requester_pays") is not True:
            return host
    return None


def requirements(item: dict, hrefs: dict[str, tuple[str, dict]]) -> dict:
    """What reading the used assets (``role -> (href, asset dict)``) needs, JSON-ready."""
    pays = sorted({urlparse(h).netloc for h, a in hrefs.values() if _requester_pays(h, a, item)})
    endpoints = {e for h, a in hrefs.values() if urlparse(h).scheme == "s3" and (e := _s3_endpoint(a, item))}
    out = {}
    if pays:
        out["requester_pays"] = pays
    if endpoints:
        out["s3_endpoint"] = sorted(endpoints)[0]
    if any(needs_signing(h) for h, _ in hrefs.values()):
        out["signing"] = "planetary-computer"
    return out


def _has_aws_credentials() -> bool:
    env = os.environ
    shared = Path(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    return bool(env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE") or shared.is_file())


def gdal_options(scene) -> dict:
    """GDAL settings the scene's reads need (an S3 endpoint), or :class:`InputError` saying what the
    user must provide (paying for requester-pays buckets, credentials)."""
    need, opts = scene.access or {}, {}
    if need.get("requester_pays") and os.environ.get("AWS_REQUEST_PAYER", "").lower() != "requester":
        raise InputError(
            f"STAC item {scene.id!r} is in the requester-pays bucket(s) {', '.join(need['requester_pays'])}: reading it "
            "bills your AWS account. To accept, set AWS_REQUEST_PAYER=requester and AWS credentials (AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE) for the workers; or use a free catalog of the same scenes (Earth "
            "Search sentinel-2-c1-l2a, Planetary Computer sentinel-2-l2a)")
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
