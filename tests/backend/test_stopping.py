"""A stop leaves nothing: SIGTERM, Ctrl-C and the worker's cancel message, sent to real processes.

Each test waits until the temporary it is about (``.store.tmp-*`` in a ``senclip-*`` folder of
TMPDIR during encoding, ``.m.tif.*.tmp.tif`` beside the output while pixels are written) exists,
stops the process, and then looks for every hidden name: nothing may remain. The pixel-writing
runs start from a big synthetic embedding store, so that stage lasts many seconds without
encoding anything first.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from leftovers import leftovers
from s2data import write_s2

CLASSES = ";".join(f"class {i}" for i in range(19))


def _wait_for(pattern_dir: Path, pattern: str, proc, timeout: float = 240.0) -> Path:
    """The first path matching ``pattern`` (hidden names included) while ``proc`` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = sorted(pattern_dir.glob(pattern))
        if hits:
            return hits[0]
        if proc.poll() is not None:
            raise AssertionError(f"process ended ({proc.returncode}) before {pattern} appeared: {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{pattern} never appeared in {pattern_dir}")


def _everything(out: Path, tmp: Path) -> list[str]:
    """What senclip left in the output folder and in TMPDIR (:func:`leftovers.leftovers`)."""
    return leftovers(tmp, out)


@pytest.fixture
def dirs(tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmpdir"
    out.mkdir()
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
    return out, tmp, env


@pytest.fixture(scope="module")
def big_store(tmp_path_factory, tiny_checkpoint):
    """An embedding store of the tiny model for a 12 000 × 9 600 px area (random embeddings):
    classifying it at pixel resolution writes 115 M pixels."""
    from synthetic_store import write_random_store

    return write_random_store(tmp_path_factory.mktemp("store") / "big", tiny_checkpoint, width=12000, height=9600)


def _cli(args, env):
    return subprocess.Popen([sys.executable, "-m", "senclip.cli.main", "-q", *map(str, args)],
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_while_encoding_removes_the_temporary_store(dirs, tiny_checkpoint, sig, code):
    out, tmp, env = dirs
    scene = write_s2(out.parent / "s.tif", width=1600, height=1600)
    proc = _cli(["classify", scene, "--classes", CLASSES, "--checkpoint", tiny_checkpoint, "--resolution", "pixel",
                 "--out", out / "m.tif"], env)
    _wait_for(tmp, "senclip-*/.store.tmp-*", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "no output was written" in err
    assert _everything(out, tmp) == []


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_while_writing_pixels_removes_the_temporary_map(dirs, big_store, sig, code):
    out, tmp, env = dirs
    proc = _cli(["classify", "--embeddings", big_store, "--classes", CLASSES, "--resolution", "pixel",
                 "--out", out / "m.tif"], env)
    _wait_for(out, ".m.tif.*.tmp.tif", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert _everything(out, tmp) == []
    assert sorted(p.name for p in big_store.iterdir()) == ["embeddings.npy", "meta.json", "valid.npy"]


class Worker:
    """``python -m senclip.worker`` with its events read line by line."""

    def __init__(self, env):
        self.proc = subprocess.Popen([sys.executable, "-m", "senclip.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.next()["event"] == "ready"

    def send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def next(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, f"worker ended: {self.proc.stderr.read()[-2000:]}"
        return json.loads(line)

    def until(self, event: str) -> dict:
        while True:
            e = self.next()
            if e["event"] in (event, "result", "error"):
                return e


def test_worker_sigterm_answers_cleans_up_and_exits_143(dirs, big_store):
    out, tmp, env = dirs
    w = Worker(env)
    w.send({"id": 1, "op": "classify_store", "args": {"store": str(big_store), "out": str(out / "m.tif"),
                                                      "classes": CLASSES, "resolution": "pixel"}})
    _wait_for(out, ".m.tif.*.tmp.tif", w.proc)
    w.proc.send_signal(signal.SIGTERM)
    e = w.until("error")
    assert (e["id"], e["event"], e["type"], e["exit_code"]) == (1, "error", "Cancelled", 143), e
    assert w.proc.wait(timeout=60) == 143
    assert _everything(out, tmp) == []


def test_worker_cancel_message_stops_the_request_and_serves_on(dirs, tiny_checkpoint):
    out, tmp, env = dirs
    scene = write_s2(out.parent / "s.tif", width=1600, height=1600)
    w = Worker(env)
    w.send({"id": 7, "op": "classify", "args": {"input": str(scene), "out": str(out / "m.tif"), "classes": CLASSES,
                                                "checkpoint": str(tiny_checkpoint), "resolution": "pixel"}})
    _wait_for(tmp, "senclip-*/.store.tmp-*", w.proc)
    assert w.until("progress")["event"] == "progress"  # encoding has begun
    w.send({"type": "cancel"})
    e = w.until("error")
    assert (e["id"], e["type"], e["exit_code"]) == (7, "Cancelled", 130), e
    assert _everything(out, tmp) == []
    w.send({"id": 8, "op": "probe", "args": {"x": 0, "y": 0}})  # still serving
    assert w.until("error")["id"] == 8
    w.send({"id": 9, "op": "shutdown"})
    assert w.until("result")["id"] == 9
    assert w.proc.wait(timeout=60) == 0


SWALLOWED_CTRL_C = """
import os, signal, sys
from senclip.maps import geotiff
from senclip.cli.main import main

write = geotiff.ClassMapWriter.write_bands
def swallowing_write(self, window, bands):
    # What rasterio's Cython callbacks do with a KeyboardInterrupt raised inside them: print it, carry on.
    try:
        os.kill(os.getpid(), signal.SIGINT)
    except KeyboardInterrupt:
        print("swallowed", file=sys.stderr)
    write(self, window, bands)
geotiff.ClassMapWriter.write_bands = swallowing_write
main(sys.argv[1:])
"""


def test_ctrl_c_swallowed_by_a_library_still_publishes_nothing(dirs, tiny_checkpoint, tmp_path):
    """CI saw it: Ctrl-C landed inside rasterio's filepath callback, the KeyboardInterrupt was only
    printed, and the map was published with exit 0. The stop must still end the run, exit 130."""
    from synthetic_store import write_random_store

    out, tmp, env = dirs
    store = write_random_store(tmp_path / "st", tiny_checkpoint, width=640, height=640)
    proc = subprocess.run([sys.executable, "-c", SWALLOWED_CTRL_C, "-q", "classify", "--embeddings", str(store),
                           "--classes", CLASSES, "--resolution", "pixel", "--out", str(out / "m.tif")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert "swallowed" in proc.stderr
    assert proc.returncode == 130, proc.stderr
    assert "no output was written" in proc.stderr
    assert _everything(out, tmp) == []
