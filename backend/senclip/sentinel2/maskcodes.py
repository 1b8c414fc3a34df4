"""What a cloud-mask raster's values mean, and the plan of which mask a run uses.

Apart from cloudmask.py so that the s2cloudless path (cloudless.py), which cloudmask.py calls, can use them
without importing its caller.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Values of the mask raster: why a pixel is masked.
CLEAR, CLOUD, SHADOW, CIRRUS, SNOW, DEFECTIVE, USER = 0, 1, 2, 3, 4, 5, 6
CODES = {CLEAR: "clear", CLOUD: "cloud", SHADOW: "cloud shadow", CIRRUS: "thin cirrus", SNOW: "snow",
         DEFECTIVE: "no data / saturated", USER: "user mask"}
# SCL class → mask code (SCL classes not listed stay clear); snow only when asked for.
SCL_CODES = {0: DEFECTIVE, 1: DEFECTIVE, 3: SHADOW, 8: CLOUD, 9: CLOUD, 10: CIRRUS}
SCL_SNOW = 11


@dataclass
class MaskPlan:
    """Which mask a run uses, decided before any pixel is read, and why."""

    method: str  # "scl" | "s2cloudless" | "file" | "none"
    note: str = ""
    source: str | None = None  # SCL or user file
    mtd_tl: str | None = None
    bands: dict = field(default_factory=dict)  # s2cloudless: band → (path, index)
    mask_snow: bool = False
    sun: dict | None = None  # sun angles given with the product files (a STAC item's), else from MTD_TL.xml

    def record(self) -> dict:
        return {"method": self.method, "note": self.note, "source": without_query(self.source),
                "mask_snow": self.mask_snow}


def without_query(path):
    """A path as it may be recorded: a URL's query string (a signing token: Planetary Computer's
    SAS, S3 presigning) never goes into stores, map tags or manifests."""
    return path.split("?", 1)[0] if isinstance(path, str) and "://" in path else path
