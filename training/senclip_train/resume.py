"""What a resumed run takes from its checkpoint, and what may still change when it is resumed.

A resumed run must compute what the interrupted run would have computed, so every setting that
shapes the computation (data, model, optimiser, schedule, augmentation, seed) comes from the
checkpoint. Given again, such a setting must equal the checkpoint's value: a different one used to
be dropped without a word, and honouring it would make a different run under the old run's name,
so it is refused, naming the option, the checkpoint's value and what to do.

Some settings may change, because they do not change what is computed:

- ``out``, ``num_workers``, ``device``, ``save_every``, ``keep``, ``log_every``: where the run writes,
  how fast it runs and how often it logs or saves (a device change can change floating-point
  rounding, not the recipe).
- ``epochs``: may grow (extend a run: StepLR counts epochs, not a total, so 20 + 10 epochs equal a
  30-epoch run) or shrink down to the checkpoint's position, never below it.
- ``root``, ``list_file``, ``embeddings``, ``init``: locations, which may point at moved copies. Their
  contents are checked instead of their names: the chip list must be the same list in the same order
  (:func:`data_fingerprint`, stored in new checkpoints) and the initial CLIP the same file (sha256).
"""
from __future__ import annotations

import hashlib

from senclip.core.errors import InputError

FREE = ("out", "num_workers", "device", "save_every", "keep", "log_every")
LOCATIONS = ("root", "list_file", "embeddings", "init")
_FLAGS = {"list_file": "--list", "augment": "augmentation (--no-augment)"}


def flag(name: str) -> str:
    """The command-line spelling of a TrainConfig field."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def _show(name: str, value) -> str:
    if name == "bands":
        return ",".join(str(b) for b in value)
    if name == "augment":
        return "on" if value else "off"
    return str(value)


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def _check_epochs(wanted: int, ck: dict, path) -> None:
    """Fewer epochs than the checkpoint has started would end the run before its own position."""
    reached = ck["epoch"] + (1 if ck.get("batch", 0) else 0)
    if wanted < reached:
        where = f"epoch {ck['epoch'] + 1}, batch {ck['batch']}" if ck.get("batch") else f"{ck['epoch']} epoch(s)"
        raise InputError(f"--epochs {wanted}: the checkpoint {path} has already reached {where}; "
                         f"give --epochs {reached} or more (or leave --epochs out to keep {ck['config']['epochs']})")


def resume_config(ck: dict, requested: dict, path) -> tuple[dict, list[str]]:
    """The config of the resumed run and log lines saying where each setting came from.

    ``requested`` holds only the settings the caller asked for (the options given on the command
    line); a value of ``None`` means "not given". Raises :class:`InputError` listing every conflict.
    """
    base = dict(ck["config"])
    given = {k: v for k, v in requested.items() if v is not None and k != "init_sha256"}
    unknown = sorted(set(given) - set(base) - set(FREE))
    if unknown:
        raise InputError(f"{', '.join(flag(k) for k in unknown)}: not a setting of the checkpoint {path} "
                         "(written by another senclip-train version?); drop it to resume")
    conflicts = [k for k, v in given.items() if k not in FREE + LOCATIONS + ("epochs",) and not _same(v, base[k])]
    if conflicts:
        lines = [f"{flag(k)} {_show(k, given[k])} (the checkpoint has {_show(k, base[k])})" for k in conflicts]
        raise InputError(f"cannot resume {path} with settings that differ from the run's: {'; '.join(lines)}. "
                         f"Drop {', '.join(flag(k) for k in conflicts)} to continue the run as it was trained, or "
                         "start a new run (a new --out, without --resume) to train with the new values")
    if "epochs" in given:
        _check_epochs(int(given["epochs"]), ck, path)
    changed = {k: v for k, v in given.items() if k not in base or not _same(v, base[k])}
    kept = sorted(k for k in base if k not in changed and k != "init_sha256")
    notes = [f"resuming {path} at epoch {ck['epoch']}, batch {ck.get('batch', 0)}, step {ck['step']}"]
    notes.append("from the checkpoint: " + ", ".join(f"{flag(k)} {_show(k, base[k])}" for k in kept))
    if changed:
        notes.append("changed on resume: " + ", ".join(f"{flag(k)} {_show(k, base.get(k, '(unset)'))} -> {_show(k, v)}"
                                                       for k, v in changed.items()))
    return {**base, **changed}, notes


def data_fingerprint(paths: list[str]) -> dict:
    """The chip list as the data order sees it: its length and a digest of the paths in order."""
    h = hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()
    return {"chips": len(paths), "list_sha256": h}


def check_data(ck: dict, fingerprint: dict, list_file) -> None:
    """A moved copy of the data is fine; another list (other chips, another order) is not."""
    old = ck.get("data")
    if old is None or old == fingerprint:
        return
    raise InputError(f"--list {list_file} holds {fingerprint['chips']} chips that are not the {old['chips']} chips, "
                     "in order, of the run being resumed; point --root/--list/--embeddings at the run's data "
                     "(or a copy of it), or start a new run without --resume")


def check_init(ck_config: dict, sha: str) -> None:
    """The initial CLIP only supplies the architecture on resume, but another file means another run."""
    want = ck_config.get("init_sha256")
    if want and sha != want:
        raise InputError(f"--init {ck_config['init']}: sha256 {sha[:12]}… is not the {want[:12]}… the run was "
                         "started from; point --init at the run's initial CLIP, or start a new run without --resume")
