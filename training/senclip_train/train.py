"""SenCLIP pretraining: one loop, resumable bit-for-bit, single process or torchrun/DDP.

A checkpoint holds everything the next step depends on — parameters, optimiser, scheduler,
AMP scaler, queue, RNG states of python/numpy/torch, and the position (epoch, batch, step) —
and the data order is a function of (seed, epoch) alone, so a run killed anywhere and resumed
from its last checkpoint ends with the same parameters as one that was never interrupted.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from senclip.core.errors import InputError

from .metrics_log import MetricsLogger
from .model.build import build_contrastive, load_clip, read_training_checkpoint
from .resume import check_data, check_init, data_fingerprint, resume_config

_log = logging.getLogger("senclip_train")


@dataclass
class TrainConfig:
    root: str
    list_file: str
    embeddings: str
    init: str
    out: str
    epochs: int = 20
    batch_size: int = 32
    lr: float | None = None  # None: 1e-4 for ViT, 1e-5 for ResNet (paper)
    weight_decay: float = 0.01
    lr_step_epochs: int = 10
    lr_gamma: float = 0.95
    pooling: str = "avg"
    pool_aggregate: str = "sum"
    head: str = "linear"
    trainable_blocks: int = 1
    queue_size: int = 512
    queue_init: str = "ground"
    temperature: float = 0.07
    crop: int = 32
    chip_size: int = 100
    bands: tuple = (3, 2, 1)
    augment: bool = True
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    amp: str = "auto"
    save_every: int = 500
    keep: int = 2
    log_every: int = 10
    init_sha256: str | None = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["bands"] = list(self.bands)
        return d


@dataclass
class TrainResult:
    step: int
    epoch: int
    checkpoint: Path
    history: list = field(default_factory=list)  # (step, loss)


def _dist():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world, int(os.environ.get("LOCAL_RANK", "0"))


def _device(choice: str, local_rank: int) -> torch.device:
    if choice == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {choice}: no CUDA device is available; use --device cpu")
    return torch.device(choice if choice != "cuda" else f"cuda:{local_rank}")


def _rng_state() -> dict:
    npst = np.random.get_state(legacy=False)
    st = {"python": random.getstate(), "torch": torch.get_rng_state(),
          "numpy": {"key": torch.from_numpy(npst["state"]["key"].astype(np.int64)), "pos": int(npst["state"]["pos"]),
                    "has_gauss": int(npst["has_gauss"]), "gauss": float(npst["gauss"])}}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    v, key, g = st["python"]
    random.setstate((v, tuple(key), g))
    torch.set_rng_state(st["torch"])
    n = st["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _fill_queue(model, ds, seed: int) -> None:
    """Start the queue with real pooled ground embeddings instead of random vectors (the
    reference defines such a fill but never calls it, so its first batches see noise negatives)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[: len(model.queue)].tolist()
    with torch.no_grad():
        model.enqueue(model.pool(torch.stack([ds.ground(i) for i in idx]).to(model.queue.device)))


def train(cfg: TrainConfig | dict, *, resume: str | Path | None = None, on_step=None) -> TrainResult:
    """Run (or continue) pretraining; ``on_step(step, loss)`` is called after every optimiser step.

    With ``resume``, the run's settings come from the checkpoint and ``cfg`` is checked against
    them (:mod:`senclip_train.resume`): a full TrainConfig must agree on every setting that shapes
    the computation; a dict names only the settings to check or change (the CLI passes the options
    given on its command line). Which settings came from where is logged to ``senclip_train``.
    """
    from torch.utils.data import DataLoader

    from .data.sampler import ResumableBatchSampler

    cfg, ck = _resumed_config(cfg, resume)
    run = _Run.start(cfg, ck)
    cfg, model = run.cfg, run.model
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = MetricsLogger(out, enabled=run.rank == 0, resume_step=run.step if ck is not None else None,
                        tensorboard=True)
    history = []
    try:
        while run.epoch < cfg.epochs:
            sampler = ResumableBatchSampler(len(run.ds), cfg.batch_size, seed=cfg.seed, epoch=run.epoch,
                                            start_batch=run.batch, rank=run.rank, world_size=run.world)
            loader = DataLoader(run.ds, batch_sampler=sampler, num_workers=cfg.num_workers,
                                generator=torch.Generator(), pin_memory=run.device.type == "cuda")
            model.train()
            for ground, images in loader:
                t0 = time.perf_counter()
                lv, pos = run.optimise(ground, images)
                history.append((run.step, lv))
                if run.step % cfg.log_every == 0 or run.step == 1:
                    log.log(run.step, epoch=run.epoch, loss=lv, lr=run.opt.param_groups[0]["lr"],
                            logit_scale=float(model.logit_scale.detach().exp()), pos_cos=pos,
                            sec_per_step=time.perf_counter() - t0)
                if cfg.save_every and run.step % cfg.save_every == 0:
                    run.save(out, f"step_{run.step:08d}.pt")
                if on_step is not None:
                    on_step(run.step, lv)
            run.epoch += 1
            run.batch = 0
            run.sched.step()
            run.save(out)
    finally:
        log.close()
    if run.world > 1:
        torch.distributed.barrier()
    return TrainResult(step=run.step, epoch=run.epoch, checkpoint=out / "last.pt", history=history)


def _resumed_config(cfg, resume):
    """(the run's TrainConfig, the checkpoint or None): with ``resume``, settings from the checkpoint."""
    if resume is None:
        return cfg, None
    ck = read_training_checkpoint(resume)
    merged, notes = resume_config(ck, cfg if isinstance(cfg, dict) else cfg.to_dict(), resume)
    for line in notes:
        _log.info(line)
    return TrainConfig(**{**merged, "bands": tuple(merged["bands"])}), ck


@dataclass
class _Run:
    """Everything one training run holds: model, data, optimiser state and its position (epoch,
    batch within it, step), so that a checkpoint can record and restore it exactly."""

    cfg: TrainConfig
    model: object
    net: object
    trainable: list
    arch: str
    ds: object
    fingerprint: dict
    opt: object
    sched: object
    scaler: object
    device: object
    use_amp: bool
    rank: int
    world: int
    epoch: int = 0
    batch: int = 0
    step: int = 0

    @classmethod
    def start(cls, cfg: TrainConfig, ck) -> "_Run":
        rank, world, local_rank = _dist()
        device = _device(cfg.device, local_rank)
        use_amp = cfg.amp == "on" or (cfg.amp == "auto" and device.type == "cuda")
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        model, trainable, arch = _model(cfg, ck)
        ds, fingerprint = _dataset(cfg, ck, model, world)
        model.to(device)
        if cfg.queue_init == "ground":
            _fill_queue(model, ds, cfg.seed)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        net = model
        if world > 1:
            net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        run = cls(cfg, model, net, trainable, arch, ds, fingerprint, opt, sched, scaler, device, use_amp, rank, world)
        if ck is not None:
            run.restore(ck)
        return run

    def restore(self, ck: dict) -> None:
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        self.epoch, self.batch, self.step = ck["epoch"], ck["batch"], ck["step"]
        _set_rng_state(ck["rng"])

    def optimise(self, ground, images) -> tuple[float, float]:
        """One optimiser step on a batch; (loss, mean positive cosine). Keys of every rank join the queue."""
        ground, images = ground.to(self.device, non_blocking=True), images.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
            loss, keys, pos = self.net(ground, images)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.model.clamp_logit_scale()
        if self.world > 1:
            parts = [torch.empty_like(keys) for _ in range(self.world)]
            torch.distributed.all_gather(parts, keys)
            keys = torch.cat(parts)
        self.model.enqueue(keys)
        self.batch += 1
        self.step += 1
        return float(loss.detach()), float(pos)

    def save(self, out: Path, tag: str | None = None) -> None:
        """last.pt (and ``tag``, keeping the newest ``keep`` step files), on rank 0 only."""
        if self.rank != 0:
            return
        state = {"config": self.cfg.to_dict(), "arch": self.arch, "model": self.model.state_dict(),
                 "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                 "scaler": self.scaler.state_dict(), "rng": _rng_state(), "epoch": self.epoch,
                 "batch": self.batch, "step": self.step, "trainable": self.trainable, "data": self.fingerprint}
        _atomic_save(state, out / "last.pt")
        if tag:
            _atomic_save(state, out / tag)
            olds = sorted(out.glob("step_*.pt"))
            for old in olds[: max(0, len(olds) - self.cfg.keep)]:
                old.unlink()


def _model(cfg: TrainConfig, ck):
    """(contrastive model, trainable parameter names, arch) from --init; fills the init checksum and lr."""
    clip_model, arch, sha = load_clip(cfg.init)
    if ck is not None:
        check_init(cfg.to_dict(), sha)
    if cfg.init_sha256 is None:
        cfg.init_sha256 = sha
    if cfg.lr is None:
        cfg.lr = 1e-4 if hasattr(clip_model.visual, "proj") else 1e-5
    model, trainable = build_contrastive(clip_model, cfg.to_dict())
    return model, trainable, arch


def _dataset(cfg: TrainConfig, ck, model, world: int):
    """(Sen2LUCAS dataset, its fingerprint), checked against the model and, on resume, the checkpoint."""
    from .data.preprocess import TrainTransform
    from .data.sen2lucas import Sen2LucasDataset

    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    ds = Sen2LucasDataset(cfg.root, cfg.list_file, cfg.embeddings, bands=cfg.bands, chip_size=cfg.chip_size or None,
                          transform=TrainTransform(size, cfg.crop, cfg.augment))
    fingerprint = data_fingerprint(ds.paths)
    if ck is not None:
        check_data(ck, fingerprint, cfg.list_file)
    if ds.dim != len(model.queue[0]):
        raise InputError(f"ground embeddings have D={ds.dim} but the CLIP in --init embeds to D={len(model.queue[0])}; "
                         "compute the embeddings with the same architecture (senclip-train embed-ground)")
    if len(ds) < cfg.batch_size * world:
        raise InputError(f"{len(ds)} chips are fewer than one batch ({cfg.batch_size} × {world} GPU(s)); lower --batch-size")
    return ds, fingerprint
