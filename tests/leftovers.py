"""What senclip left behind after a stop: the one rule the stop and cancel tests share."""
from __future__ import annotations

from pathlib import Path


def leftovers(tmpdir: Path, *outputs: Path) -> list[str]:
    """What senclip left: everything below the output folders and below ``senclip-*`` in TMPDIR,
    hidden names included (``Path.rglob`` lists dot-files; ``glob.glob('*')`` would not). Other
    programs' files in TMPDIR are not senclip's: torch's ``torchinductor_*`` caches, and ONNX
    Runtime's telemetry session file ``.ses``, which onnxruntime >= 1.2x writes there when it is
    imported (it stays after every run, stopped or not, and is reused by the next)."""
    mine = [p for p in Path(tmpdir).iterdir() if p.name.startswith("senclip-")]
    return sorted(str(p) for p in mine + [q for m in mine if m.is_dir() for q in m.rglob("*")]
                  + [q for f in outputs for q in Path(f).rglob("*")])
