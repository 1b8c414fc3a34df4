"""The light install itself: what `make setup` builds as .venv-light is what the plugin installs by
default (the backend's light extra), without torch, within the plugin plan's announced size, and the
CLI starts in it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from install_sizes import installed_mib
from senclip_qgis import install_plan, installer

SENCLIP = Path(sys.executable).with_name("senclip")


def test_the_light_extra_is_installed_without_torch_and_fits_the_plan():
    mib, names, missing = installed_mib([f"senclip[{installer.EXTRAS[installer.DEFAULT_EXTRAS]}]"],
                                        under=Path(sys.prefix))
    assert missing == set(), f"the light extra is not fully installed here: {sorted(missing)}"
    assert {"onnxruntime", "onnx", "openvino", "s2cloudless", "lightgbm"} <= names
    assert not names & {"torch", "torchvision", "open-clip-torch", "onnxscript"}, names
    disk = install_plan.LIGHT_MB[1]
    assert 0.8 * mib <= disk <= 1.2 * mib and mib <= 600, (round(mib), disk)


def test_the_cli_starts_and_lists_the_models_without_torch():
    version = subprocess.run([str(SENCLIP), "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and "senclip" in version.stdout, version.stderr[-2000:]
    listing = subprocess.run([str(SENCLIP), "models", "list"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "senclip-vitb32-avgpool" in listing.stdout, listing.stderr[-2000:]
    probe = "import sys, senclip.cli.main; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120).stdout.strip() == "False"
