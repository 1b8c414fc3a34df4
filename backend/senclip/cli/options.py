"""Options shared by several subcommands, defined once (rasterio's rio/options.py pattern)."""
from __future__ import annotations

import click

from senclip.core.choices import choices, default
from senclip.sentinel2.scene import DEFAULT_MAX_REFLECTANCE
from senclip.embedding.tiling import DEFAULT_MIN_VALID, DEFAULT_TILE


def _stack(*decorators):
    def wrap(f):
        for d in reversed(decorators):
            f = d(f)
        return f
    return wrap


model_options = _stack(
    click.option("--model", "model", default=None, metavar="ID",
                 help="Registry model id (see 'senclip models list'). Default: senclip-vitb32-avgpool."),
    click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
                 help="A local checkpoint instead of --model: SenCLIP-format state_dict (whole OpenAI-CLIP "
                      "model, architecture read from the keys) or an open_clip checkpoint."),
    click.option("--arch", default=None, help="open_clip architecture for --checkpoint when it cannot be inferred."),
    click.option("--backend", type=click.Choice(choices("backend")), default=default("backend"), show_default=True,
                 help="Inference engine. auto: torch where it is installed, else onnx (ONNX Runtime/OpenVINO, no torch "
                      "needed: the ONNX graphs are built from the weights once and cached)."),
    click.option("--device", type=click.Choice(choices("device")), default=default("device"), show_default=True,
                 help="auto uses CUDA when available and says which device ran."),
    click.option("--precision", type=click.Choice(choices("precision")), default=default("precision"), show_default=True,
                 help="Number format of the image encoder. auto: the fastest this CPU and install run that keeps "
                      "cosine >= 0.999 to fp32 (AMX + OpenVINO: bf16; VNNI or AVX2 with --backend onnx: int8, once "
                      "checked on real chips; else fp32), recorded in every output. bf16 needs AMX/AVX512_BF16 "
                      "(or CUDA with torch) and, with --backend onnx, OpenVINO; int8 needs --backend onnx."),
    click.option("--int8", is_flag=True, callback=lambda ctx, param, v: _deprecated_int8(v),
                 help="Deprecated: same as --precision int8."),
    click.option("--offline", is_flag=True, help="Never download; use cached weights only."),
)

tiling_options = _stack(
    click.option("--tile", type=int, default=DEFAULT_TILE, show_default=True, help="Chip size in pixels (64 = EuroSAT chip)."),
    click.option("--stride", type=int, default=None, help="Step between chips in pixels [default: tile/2]."),
    click.option("--batch-size", type=int, default=32, show_default=True, help="Chips per encoder call."),
    click.option("--bands", default=None, metavar="R,G,B",
                 help="Which bands are red, green, blue: 1-based indices ('4,3,2') or names ('B04,B03,B02'). "
                      "Default by band count: 13 = L1C order, 12 = L2A order, 4 = B2,B3,B4,B8, 3 = RGB."),
    click.option("--scale", default="auto", show_default=True,
                 help="Digital numbers per unit reflectance (Sentinel-2: 10000). 8-bit input is used as is."),
    click.option("--offset", default="auto", show_default=True,
                 help="Added to DNs before scaling; auto reads BOA/RADIO_ADD_OFFSET (−1000 from baseline 04.00) "
                      "from the SAFE metadata or the N0400 baseline in the name."),
    click.option("--max-reflectance", type=float, default=DEFAULT_MAX_REFLECTANCE, show_default=True,
                 help="Reflectance shown as full brightness when converting to 8-bit RGB."),
    click.option("--stretch", type=click.Choice(choices("stretch")), default=default("stretch"), show_default=True,
                 help="8-bit conversion: fixed = 0..--max-reflectance for every chip; chip-minmax = each chip's own "
                      "min..max (SenCLIP's training recipe)."),
    click.option("--min-valid", type=float, default=DEFAULT_MIN_VALID, show_default=True,
                 help="Chips with a smaller fraction of valid pixels are left unclassified (0)."),
    click.option("--bounds", default=None, metavar="MINX,MINY,MAXX,MAXY",
                 help="Only process this extent (in the raster's CRS)."),
    click.option("--mask", type=click.Path(dir_okay=False), default=None,
                 help="GeoJSON polygons: only classify inside them."),
)

cloud_options = _stack(
    click.option("--cloud-mask", default="auto", show_default=True, metavar="MODE|FILE",
                 help="Mask clouds and cloud shadows before classifying. MODE: auto, scl, s2cloudless or none. scl = the L2A product's scene "
                      "classification; s2cloudless = the pretrained L1C cloud detector plus projected shadows; "
                      "FILE = any raster, non-zero = masked; auto = scl if present, else s2cloudless if the L1C "
                      "bands are there, else none (with a note). Masked pixels get class 255 (cloud / shadow)."),
    click.option("--mask-snow", is_flag=True, help="With the SCL mask: also mask snow/ice (SCL class 11)."),
)

prompt_options = _stack(
    click.option("--classes", default=None, help='Class names separated by ";", e.g. "Forest;Sea or Lake".'),
    click.option("--prompts", type=click.Path(dir_okay=False), default=None,
                 help="JSON file {class: [prompt, ...]} (the SenCLIP release format)."),
    click.option("--prompt-style", type=click.Choice(choices("prompt_style")), default=default("prompt_style"), show_default=True,
                 help="Built-in prompts: ground-level descriptions (SenCLIP), aerial, or generic templates."),
)


def _deprecated_int8(value: bool) -> bool:
    if value:
        click.echo("warning: --int8 is deprecated; use --precision int8", err=True)
    return value


def parse_bounds(value):
    if value is None:
        return None
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4:
        raise click.BadParameter("must be four numbers MINX,MINY,MAXX,MAXY", param_hint="--bounds")
    return parts

CALIBRATE_HELP = ("Re-weigh the classes over the whole scene. shares: estimate each class's share of the scene and "
                  "drop the classes it lacks (safe: never worse than none on the benchmark). column-mean: the "
                  "SenCLIP paper's per-class normalisation; it assumes every class holds an equal share and breaks "
                  "badly when the scene lacks some classes (see docs/transductive.md).")

transductive_options = _stack(
    click.option("--transductive", is_flag=True,
                 help="Classify the whole scene at once: a Gaussian mixture over the embeddings with learnt class "
                      "shares (classes the scene lacks are dropped, and listed in the output), a pull towards the 3 "
                      "most similar cells, anchored to the zero-shot answer (TransCLIP, Zanella et al. 2024, made "
                      "safe for scenes holding only some of the classes, after StatA, CVPR 2025); see "
                      "docs/transductive.md. Recorded in the map's tags."),
    click.option("--spatial", type=click.Choice(choices("spatial")), default=default("spatial"), show_default=True,
                 help="With --transductive: also pull each cell towards its 8 or 4 grid neighbours (weighted by "
                      "embedding similarity), which removes salt-and-pepper; none = the paper's feature graph alone."),
)
