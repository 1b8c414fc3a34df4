"""Where weight files live, and how they get there.

The cache is ``$SENCLIP_HOME`` or the user's cache dir, never the plugin folder (QGIS wipes it
on every update). A weight file's home is ``<cache>/weights/<model-id>/<filename>``: downloads
land there (huggingface_hub streams to a temporary file and renames), and a file copied there by
hand on an offline machine is picked up the same way. Known (pinned) checksums are always
verified. For a model whose registry entry has none, the first complete file is trusted and its
sha256 recorded (``<file>.trusted.json``, kept when the file is deleted); a later file with
another hash is refused until the user asks for it (``senclip models download ID --refresh``),
so a changed upstream file or a swapped cache file never silently changes the maps.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from senclip.models.checkpoints import sha256_file
from senclip.core.errors import ChecksumError, InputError, WeightsNotAvailableError
from senclip.core.feedback import Feedback
from senclip.core.outputs import Staged
from senclip.models.registry import ModelSpec

HF_ENDPOINT_DEFAULT = "https://huggingface.co"
_TRUE = {"1", "true", "yes", "on"}


def senclip_home() -> Path:
    """``$SENCLIP_HOME``, else the platform's per-user cache folder + ``senclip``."""
    env = os.environ.get("SENCLIP_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "senclip" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "senclip"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "senclip"


def weights_dir() -> Path:
    return senclip_home() / "weights"


def hf_endpoint(endpoint: str | None = None) -> str:
    return (endpoint or os.environ.get("SENCLIP_HF_ENDPOINT") or HF_ENDPOINT_DEFAULT).rstrip("/")


def is_offline(offline: bool = False) -> bool:
    return offline or any(os.environ.get(v, "").lower() in _TRUE for v in ("SENCLIP_OFFLINE", "HF_HUB_OFFLINE"))


def cached_path(spec: ModelSpec) -> Path:
    """The exact path the weights of ``spec`` are expected at (downloaded or placed by hand)."""
    if spec.source is None:
        raise InputError(f"model {spec.id!r} has no weight file (random initialisation)")
    name = spec.source.filename or spec.source.url.rstrip("/").rsplit("/", 1)[-1]
    return weights_dir() / spec.id / name


def source_url(spec: ModelSpec, endpoint: str | None = None) -> str:
    src = spec.source
    if src.url:
        return src.url
    return f"{hf_endpoint(endpoint)}/{src.hf_repo}/resolve/{src.revision}/{src.filename}"


@dataclass(frozen=True)
class WeightsFile:
    path: Path
    sha256: str
    verified: bool  # True: matched the registry's checksum; False: registry has none, computed here
    trust: str = "pinned"  # "pinned" (registry sha256), "recorded" (first use, now), "trusted" (matches the record)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def trust_record(path: Path) -> Path:
    """Where the sha256 of the first copy of an unpinned weight file is kept."""
    return path.with_name(path.name + ".trusted.json")


def recorded_sha256(spec: ModelSpec) -> str | None:
    """The hash trusted on first use for ``spec`` (None: pinned in the registry, or never used)."""
    try:
        return json.loads(trust_record(cached_path(spec)).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _checksum(path: Path) -> str:
    """sha256 of ``path``, reusing a sidecar while size and mtime are unchanged (hashing 600 MB
    costs seconds on every run otherwise)."""
    st = path.stat()
    side = _sidecar(path)
    try:
        rec = json.loads(side.read_text())
        if rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns:
            return rec["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = sha256_file(path)
    try:
        side.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}))
    except OSError:
        pass
    return digest


def _verify(spec: ModelSpec, path: Path) -> WeightsFile:
    actual = _checksum(path)
    if not spec.sha256:
        return _trust_on_first_use(spec, path, actual)
    if actual.lower() != spec.sha256.lower():
        path.unlink(missing_ok=True)
        _sidecar(path).unlink(missing_ok=True)
        raise ChecksumError(
            f"{path} has sha256 {actual} but model {spec.id!r} expects {spec.sha256}; the file was deleted: "
            f"download it again (senclip models download {spec.id}) or copy a good copy to that path"
        )
    return WeightsFile(path, actual, verified=True)


def _trust_on_first_use(spec: ModelSpec, path: Path, actual: str) -> WeightsFile:
    """No published hash: record the first file's, and hold every later file to it."""
    trusted = recorded_sha256(spec)
    if trusted is None:
        record = {"model": spec.id, "sha256": actual, "size": path.stat().st_size,
                  "recorded": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        with Staged(trust_record(path)) as tmp:
            tmp.write_text(json.dumps(record, indent=2))
        return WeightsFile(path, actual, verified=False, trust="recorded")
    if trusted.lower() != actual.lower():
        raise ChecksumError(
            f"{path} has sha256 {actual}, but the copy of model {spec.id!r} first used here had {trusted} "
            f"(recorded in {trust_record(path).name}); the weights changed. If you trust the new file, "
            f"run `senclip models download {spec.id} --refresh`; otherwise put the old file back")
    return WeightsFile(path, actual, verified=False, trust="trusted")


def _missing(spec: ModelSpec, path: Path, endpoint: str | None, why: str) -> WeightsNotAvailableError:
    return WeightsNotAvailableError(
        f"weights for model {spec.id!r} are not available ({why}): the file {path.name} is missing. "
        f"On a machine with network download {source_url(spec, endpoint)} and copy it to {path} "
        f"(or set SENCLIP_HOME; then run `senclip models download {spec.id}` to check it)"
    )


def fetch_weights(spec: ModelSpec, *, offline: bool = False, endpoint: str | None = None,
                  feedback: Feedback | None = None, refresh: bool = False) -> WeightsFile:
    """The verified local weight file of ``spec``, downloading it unless offline.

    ``refresh`` (unpinned models only) forgets the hash trusted on first use: the file is
    downloaded again (offline: the file in the cache is taken) and its hash recorded anew.

    Raises:
        WeightsNotAvailableError: offline or the download failed; says which file, where to put it
            and where to get it.
        ChecksumError: the file (cached or downloaded) has another sha256 than the registry's (it
            is deleted), or than the one recorded on first use (it is kept, for ``refresh``).
    """
    feedback = feedback or Feedback()
    path = cached_path(spec)
    if refresh and not spec.sha256:
        trust_record(path).unlink(missing_ok=True)
        if not is_offline(offline):
            path.unlink(missing_ok=True)
            _sidecar(path).unlink(missing_ok=True)
    if path.is_file():
        return _verify(spec, path)
    if is_offline(offline):
        raise _missing(spec, path, endpoint, "offline mode")
    url = source_url(spec, endpoint)
    unreachable = _unresolvable_host(url)
    if unreachable:  # not transient: fail now, no retry warnings
        raise _missing(spec, path, endpoint, f"no network: the name {unreachable} does not resolve")
    path.parent.mkdir(parents=True, exist_ok=True)
    feedback.info(f"downloading {spec.id} weights from {url} to {path}")
    try:
        if spec.source.url:
            _download_url(url, path)
        else:
            _download_hf(spec, path, endpoint)
    except Exception as e:  # HF, httpx and socket errors share no base class but Exception
        _cleanup(path)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise _missing(spec, path, endpoint, f"download failed: {type(e).__name__}: {first[:200]}") from None
    except BaseException:
        _cleanup(path)
        raise
    return _verify(spec, path)


def _unresolvable_host(url: str) -> str | None:
    """The host of ``url`` when DNS says it does not exist (offline, air-gapped, blocked), else None.

    huggingface_hub retries connection errors five times a second apart, printing a warning each
    time; a name that does not resolve will not resolve a second later, so we ask DNS once first.
    A temporary DNS failure (EAI_AGAIN) is left to the downloader and its retries.
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return None
    try:
        socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as e:
        transient = {getattr(socket, "EAI_AGAIN", None)}
        return None if e.errno in transient else host
    except OSError:
        return None
    return None


def resolve_weights(spec: ModelSpec, *, offline: bool = False, endpoint: str | None = None,
                    feedback: Feedback | None = None) -> Path:
    """Path of the verified weight file of ``spec`` (see :func:`fetch_weights`)."""
    return fetch_weights(spec, offline=offline, endpoint=endpoint, feedback=feedback).path


def _cleanup(path: Path) -> None:
    """No half file may stay where a later run would trust it."""
    path.unlink(missing_ok=True)
    shutil.rmtree(path.parent / ".cache", ignore_errors=True)


def _download_hf(spec: ModelSpec, path: Path, endpoint: str | None) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()  # feedback reports instead; HF's bars would garble the CLI's tqdm
    got = hf_hub_download(
        repo_id=spec.source.hf_repo, filename=spec.source.filename, revision=spec.source.revision,
        local_dir=str(path.parent), cache_dir=str(senclip_home() / "hf-cache"),
        endpoint=hf_endpoint(endpoint), token=False,
    )
    if Path(got).resolve() != path.resolve():  # a filename with folders in the repo
        os.replace(got, path)
    shutil.rmtree(path.parent / ".cache", ignore_errors=True)


def _download_url(url: str, path: Path) -> None:
    with Staged(path, suffix=".incomplete") as tmp:
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=30) as resp:
            expected = resp.headers.get("Content-Length")
            shutil.copyfileobj(resp, out, 1 << 20)
        if expected is not None and os.path.getsize(tmp) != int(expected):
            raise OSError(f"transfer truncated: got {os.path.getsize(tmp)} of {expected} bytes")
