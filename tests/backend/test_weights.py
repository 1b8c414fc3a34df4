"""Downloads against a Hugging-Face-like server on 127.0.0.1: good, corrupt, truncated, cached, offline."""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from senclip.core.errors import ChecksumError, InputError, SenclipError, WeightsNotAvailableError
from senclip.models.registry import ModelSpec
from senclip.models import weights
cached_path, fetch_weights, resolve_weights = weights.cached_path, weights.fetch_weights, weights.resolve_weights

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubHandler(BaseHTTPRequestHandler):
    """``/{repo}/resolve/{revision}/{filename}`` as huggingface_hub expects it: a HEAD with ETag,
    X-Repo-Commit and Content-Length, then a GET. ``server.files`` maps URL path → (bytes, mode)."""

    def _entry(self):
        return self.server.files.get(self.path.split("?")[0])

    def _headers(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()

    def do_HEAD(self):  # noqa: N802
        self.server.log.append(("HEAD", self.path))
        entry = self._entry()
        if entry is None:
            self.send_error(404)
            return
        self._headers(entry[0])

    def do_GET(self):  # noqa: N802
        self.server.log.append(("GET", self.path))
        entry = self._entry()
        if entry is None:
            self.send_error(404)
            return
        body, mode = entry
        if self.headers.get("Range"):  # no resume: a truncated transfer must fail, not loop
            self.send_error(416)
            return
        self._headers(body)
        self.wfile.write(body[: len(body) // 3] if mode == "truncate" else body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    server.files, server.log = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _endpoint(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _spec(sha: str | None = SHA, model_id: str = "test-model", url: str | None = None) -> ModelSpec:
    source = {"url": url} if url else {"hf_repo": "org/repo", "filename": "weights.ckpt", "revision": "main"}
    return ModelSpec.from_dict({"id": model_id, "arch": "ViT-B-32-quickgelu", "description": "test",
                                "source": source, "sha256": sha})


def _serve(server, body: bytes, mode: str = "ok") -> None:
    server.files["/org/repo/resolve/main/weights.ckpt"] = (body, mode)


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_home_comes_from_env(senclip_home):
    assert weights.senclip_home() == senclip_home


def test_good_download_is_verified_and_cached(hub, senclip_home):
    _serve(hub, PAYLOAD)
    got = fetch_weights(_spec(), endpoint=_endpoint(hub))
    assert got.path == senclip_home / "weights" / "test-model" / "weights.ckpt" == cached_path(_spec())
    assert got.path.read_bytes() == PAYLOAD and got.sha256 == SHA and got.verified
    assert not list(got.path.parent.rglob("*.incomplete"))
    # second call: no network at all
    n = len(hub.log)
    hub.shutdown()
    assert resolve_weights(_spec(), endpoint=_endpoint(hub)) == got.path
    assert len(hub.log) == n


def test_endpoint_from_environment(hub, monkeypatch):
    _serve(hub, PAYLOAD)
    monkeypatch.setenv("SENCLIP_HF_ENDPOINT", _endpoint(hub))
    assert resolve_weights(_spec()).read_bytes() == PAYLOAD
    assert ("GET", "/org/repo/resolve/main/weights.ckpt") in hub.log


def test_unknown_checksum_is_computed_and_remembered(hub):
    _serve(hub, PAYLOAD)
    got = fetch_weights(_spec(sha=None), endpoint=_endpoint(hub))
    assert got.sha256 == SHA and not got.verified
    assert got.path.with_name("weights.ckpt.sha256.json").is_file()
    assert fetch_weights(_spec(sha=None), offline=True).sha256 == SHA


def test_wrong_hash_deletes_file(hub, senclip_home):
    _serve(hub, PAYLOAD[:-1] + b"x")
    with pytest.raises(ChecksumError) as e:
        resolve_weights(_spec(), endpoint=_endpoint(hub))
    msg = str(e.value)
    assert SHA in msg and hashlib.sha256(PAYLOAD[:-1] + b"x").hexdigest() in msg
    assert str(cached_path(_spec())) in msg and "deleted" in msg
    assert _leftovers(senclip_home / "weights") == []


def test_truncated_transfer_leaves_nothing(hub, senclip_home, monkeypatch):
    import huggingface_hub.file_download as hf_download

    monkeypatch.setattr(hf_download.time, "sleep", lambda s: None)  # HF retries 5x, 1 s apart
    _serve(hub, PAYLOAD, mode="truncate")
    with pytest.raises(WeightsNotAvailableError) as e:
        resolve_weights(_spec(), endpoint=_endpoint(hub))
    assert "download failed" in str(e.value) and "weights.ckpt" in str(e.value)
    assert sum(1 for method, _ in hub.log if method == "GET") >= 2  # HF did retry
    assert _leftovers(senclip_home) == []


def test_missing_remote_file_says_where_to_put_it(hub):
    with pytest.raises(WeightsNotAvailableError) as e:
        resolve_weights(_spec(), endpoint=_endpoint(hub))
    assert str(cached_path(_spec())) in str(e.value)


@pytest.mark.parametrize("how", ["argument", "SENCLIP_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_message_and_manual_placement(hub, monkeypatch, how):
    spec = _spec()
    if how != "argument":
        monkeypatch.setenv(how, "1")
    with pytest.raises(WeightsNotAvailableError) as e:
        resolve_weights(spec, offline=how == "argument", endpoint=_endpoint(hub))
    msg = str(e.value)
    target = cached_path(spec)
    assert "offline" in msg and str(target) in msg and "weights.ckpt" in msg
    assert f"{_endpoint(hub)}/org/repo/resolve/main/weights.ckpt" in msg
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, SenclipError)
    assert hub.log == []
    # the user follows the message
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    assert resolve_weights(spec, offline=how == "argument") == target


def test_manually_placed_bad_file_is_rejected(senclip_home):
    target = cached_path(_spec())
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the weights")
    with pytest.raises(ChecksumError):
        resolve_weights(_spec(), offline=True)
    assert not target.exists()


def test_plain_url_source(hub, senclip_home):
    hub.files["/files/w.bin"] = (PAYLOAD, "ok")
    hub.files["/files/t.bin"] = (PAYLOAD, "truncate")
    spec = _spec(url=f"{_endpoint(hub)}/files/w.bin", model_id="url-model")
    assert resolve_weights(spec).read_bytes() == PAYLOAD
    bad = _spec(url=f"{_endpoint(hub)}/files/t.bin", model_id="url-bad")
    with pytest.raises(WeightsNotAvailableError):
        resolve_weights(bad)
    assert _leftovers(senclip_home / "weights" / "url-bad") == []


def test_model_without_weights():
    spec = ModelSpec.from_dict({"id": "rand", "arch": "ViT-B-32-quickgelu", "source": None})
    with pytest.raises(InputError):
        resolve_weights(spec)


def test_a_name_that_does_not_resolve_fails_at_once_without_retries(monkeypatch):
    """Offline machines: DNS says the hub does not exist; no download (and no retry loop) may start."""
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: calls.append(a) or "")
    with pytest.raises(WeightsNotAvailableError) as e:
        resolve_weights(_spec(), endpoint="https://senclip-weights.invalid")  # RFC 2606: never resolves
    assert calls == [], "the downloader (and its retries) must not run for a name that does not resolve"
    msg = str(e.value)
    assert "senclip-weights.invalid does not resolve" in msg and str(cached_path(_spec())) in msg
    assert "\n" not in msg


# --- trust on first use: models whose registry entry has no sha256 -------------------------------
OTHER = bytes(reversed(PAYLOAD))


def test_unpinned_first_download_is_recorded_and_a_changed_file_refused(hub):
    spec = _spec(sha=None)
    _serve(hub, PAYLOAD)
    first = fetch_weights(spec, endpoint=_endpoint(hub))
    assert (first.trust, first.sha256) == ("recorded", SHA) and weights.recorded_sha256(spec) == SHA
    assert fetch_weights(spec, offline=True).trust == "trusted"
    # upstream changes the file and the cached copy is gone: the new download is refused
    _serve(hub, OTHER)
    cached_path(spec).unlink()
    with pytest.raises(ChecksumError, match="--refresh") as e:
        fetch_weights(spec, endpoint=_endpoint(hub))
    assert SHA in str(e.value) and hashlib.sha256(OTHER).hexdigest() in str(e.value)
    # a file swapped by hand in the cache is refused the same way, offline too
    with pytest.raises(ChecksumError, match="first used here"):
        fetch_weights(spec, offline=True)
    assert weights.recorded_sha256(spec) == SHA  # the record survives


def test_refresh_accepts_and_records_the_new_file(hub):
    spec = _spec(sha=None)
    _serve(hub, PAYLOAD)
    fetch_weights(spec, endpoint=_endpoint(hub))
    _serve(hub, OTHER)
    got = fetch_weights(spec, endpoint=_endpoint(hub), refresh=True)
    assert got.path.read_bytes() == OTHER and got.trust == "recorded"
    assert weights.recorded_sha256(spec) == hashlib.sha256(OTHER).hexdigest()
    assert fetch_weights(spec, offline=True).trust == "trusted"


def test_models_list_says_which_entries_are_pinned(hub, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from senclip.models import registry
    from senclip.cli.main import cli

    extra = tmp_path / "models"
    extra.mkdir()
    (extra / "zz-unpinned.json").write_text(
        '{"id": "zz-unpinned", "arch": "ViT-B-32-quickgelu", "description": "test", '
        '"source": {"hf_repo": "org/repo", "filename": "weights.ckpt"}}')
    (extra / "zz-pinned.json").write_text(
        '{"id": "zz-pinned", "arch": "ViT-B-32-quickgelu", "description": "test", '
        f'"source": {{"hf_repo": "org/repo", "filename": "weights.ckpt"}}, "sha256": "{SHA}"}}')
    monkeypatch.setattr(registry, "_extra_dirs", [extra])

    def pinned_column(output):
        rows = [line.split() for line in output.splitlines()]
        head = next(r for r in rows if r[:2] == ["id", "arch"])
        return {r[0]: r[head.index("pinned")] for r in rows if r and r[0] in registry.list_models()}

    res = CliRunner().invoke(cli, ["models", "list"])
    col = pinned_column(res.output)
    assert col["zz-unpinned"] == "no" and col["untrained-smoke"] == "n/a" and col["zz-pinned"] == "sha256"
    assert all(col[m] == ("sha256" if registry.get_model_spec(m).sha256 else "no")
               for m in registry.list_models() if registry.get_model_spec(m).source)
    _serve(hub, PAYLOAD)
    fetch_weights(registry.get_model_spec("zz-unpinned"), endpoint=_endpoint(hub))
    assert pinned_column(CliRunner().invoke(cli, ["models", "list"]).output)["zz-unpinned"] == "first-use"
