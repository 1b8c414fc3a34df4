"""Computing the frozen ground-photo embeddings file from a folder of LUCAS photos.

Photo naming convention: ``<root>/<CC>/<POINTID><D>.jpg`` or ``<root>/<CC>/<POINTID>_<D>.jpg``
(D one of N, E, S, W; .jpg/.jpeg/.png, any case), the country folder being the same two-letter
code as in the chip list. Each photo goes through the frozen CLIP with CLIP's own preprocessing
(resize, centre crop, CLIP mean/std): the photos are ordinary ground-level pictures.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from senclip.core.errors import InputError

_PHOTO = re.compile(r"^(\d+)_?([NESWnesw])\.(jpe?g|png)$", re.IGNORECASE)


def find_photos(root) -> dict[str, Path]:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"photo folder {root} is not a folder; pass --photos with <CC>/<POINTID><D>.jpg inside")
    found: dict[str, Path] = {}
    for cc_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if not re.match(r"^[A-Za-z]{2}$", cc_dir.name):
            continue
        for f in sorted(cc_dir.iterdir()):
            m = _PHOTO.match(f.name)
            if m:
                found[f"{cc_dir.name.upper()}_{m.group(1)}{m.group(2).upper()}"] = f
    if not found:
        raise InputError(f"no LUCAS photos found under {root}; expected <CC>/<POINTID><D>.jpg with D in N,E,S,W")
    return found


def embed_ground(photos, out, *, init: str, batch_size: int = 64, device: str = "cpu", feedback=None) -> Path:
    """Write ``{key: (1, D) L2-normalised float32 tensor}`` to ``out`` (temp file, then rename)."""
    import open_clip
    import torch
    from PIL import Image, UnidentifiedImageError

    from senclip.models.registry import CLIP_MEAN, CLIP_STD

    from ..model.build import load_clip

    files = find_photos(photos)
    model, _, _ = load_clip(init)
    model = model.to(device).eval()
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    tf = open_clip.image_transform(size, is_train=False, mean=CLIP_MEAN, std=CLIP_STD)
    keys = list(files)
    out_dict = {}
    if feedback is not None:
        feedback.start(len(keys), "embedding ground photos")
    for i in range(0, len(keys), batch_size):
        chunk = keys[i:i + batch_size]
        imgs = []
        for k in chunk:
            try:
                with Image.open(files[k]) as im:
                    imgs.append(tf(im.convert("RGB")))
            except (UnidentifiedImageError, OSError) as e:
                raise InputError(f"photo {files[k]} cannot be decoded ({e}); remove or replace it") from None
        with torch.no_grad():
            emb = torch.nn.functional.normalize(model.encode_image(torch.stack(imgs).to(device)).float(), dim=-1).cpu()
        for k, e in zip(chunk, emb):
            out_dict[k] = e.reshape(1, -1).clone()
        if feedback is not None:
            feedback.advance(len(chunk))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    torch.save(out_dict, tmp)
    os.replace(tmp, out)
    return out
