"""Turning Sentinel-2 reflectance chips into 8-bit RGB and into training tensors.

Training follows the reference recipe (global min-max over the three bands to 0..255, centre
crop, bilinear resize to the model's input size, RandAugment(3, 5), SenCLIP mean/std). The
random augmentation is drawn from a per-sample seed rather than the global RNG, so a sample
looks the same whichever worker loads it and whether or not the run was resumed.
"""
from __future__ import annotations

import numpy as np

from senclip.core.errors import InputError
from senclip.models.registry import SENCLIP_MEAN, SENCLIP_STD


def minmax_to_uint8(arr: np.ndarray) -> np.ndarray:
    """(3, H, W) numbers → uint8 by one min and one max over *all* bands (OpenCV NORM_MINMAX,
    as the reference loaders do). A constant chip becomes all zeros instead of dividing by 0."""
    a = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(a).all():
        a = np.where(np.isfinite(a), a, np.nanmin(np.where(np.isfinite(a), a, np.inf)))
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo))).clip(0, 255).astype(np.uint8)


def read_rgb(path, bands=(3, 2, 1)) -> np.ndarray:
    """Read the given 1-based bands of a GeoTIFF as a (3, H, W) array; corrupt files and
    missing bands raise :class:`InputError` naming the file."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as src:
            if max(bands) > src.count:
                raise InputError(f"{path} has {src.count} band(s) but --bands asks for {list(bands)}; "
                                 "pass --bands with indexes that exist (1-based, R,G,B order)")
            return src.read(list(bands))
    except (RasterioError, OSError) as e:
        raise InputError(f"cannot read chip {path} ({e}); the file is missing or corrupt") from None


class TrainTransform:
    """uint8 (3, H, W) → normalised float tensor (3, S, S), augmented from ``seed``."""

    def __init__(self, image_size: int, crop: int = 32, augment: bool = True,
                 mean=SENCLIP_MEAN, std=SENCLIP_STD):
        from torchvision import transforms as T

        self.crop = crop
        self.augment = augment
        self.geometric = T.Compose([T.CenterCrop((crop, crop)),
                                    T.Resize((image_size, image_size), interpolation=T.InterpolationMode.BILINEAR)])
        self.randaug = T.RandAugment(3, 5, interpolation=T.InterpolationMode.BILINEAR)
        self.to_tensor = T.Compose([T.ToTensor(), T.Normalize(mean, std)])

    def __call__(self, chip: np.ndarray, seed: int):
        import torch
        from PIL import Image

        img = self.geometric(Image.fromarray(np.ascontiguousarray(chip.transpose(1, 2, 0)), mode="RGB"))
        if self.augment:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                img = self.randaug(img)
        return self.to_tensor(img)
