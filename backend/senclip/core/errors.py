"""One error tree for the whole backend.

Every error a user can cause derives from :class:`SenclipError` *and* from the builtin it
resembles, so callers may catch either. The CLI maps :class:`InputError` (and its kin) to exit
code 2 and prints only the message: messages therefore carry the offending value and the fix.
"""
from __future__ import annotations


class SenclipError(Exception):
    """Root of all errors raised on purpose by senclip."""

    exit_code = 1


class InputError(SenclipError, ValueError):
    """The user gave something we cannot work with (raster, option, prompts)."""

    exit_code = 2


class CheckpointError(InputError):
    """A checkpoint file is unreadable, truncated, or fits no known architecture."""


class ForeignLayoutError(CheckpointError):
    """A readable state_dict whose keys are not the OpenAI-CLIP / SenCLIP layout (another open_clip
    model): only torch's exporter, given ``--arch``, can make its ONNX export."""


class WeightsNotAvailableError(SenclipError, FileNotFoundError):
    """Weights are neither cached nor downloadable (offline, or no network)."""

    exit_code = 2


class ChecksumError(SenclipError, OSError):
    """A downloaded or cached file does not have the sha256 the registry records."""

    exit_code = 2


class StoreMismatchError(InputError):
    """An embedding store was made with another model, preprocessing or tiling."""


class OutputError(SenclipError, OSError):
    """The output path cannot be written."""

    exit_code = 2


class BackendUnavailableError(SenclipError, ImportError):
    """An optional dependency (torch, open_clip, onnxruntime) is missing for the chosen backend."""

    exit_code = 2


class Cancelled(SenclipError):
    """The user cancelled (Ctrl-C, SIGTERM, or the QGIS cancel button). Nothing was written.

    Exit code 130 (128 + SIGINT) by default; 143 (128 + SIGTERM) when a SIGTERM stopped the run."""

    exit_code = 130

    def __init__(self, message: str = "cancelled; no output was written", exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread exactly where Ctrl-C raises ``KeyboardInterrupt`` (see
    :mod:`senclip.core.stopping`), so every cleanup that Ctrl-C runs also runs for ``kill``, batch
    systems and the plugin's stop. A ``KeyboardInterrupt``, not an ``Exception``: no
    ``except Exception`` on the way may swallow it."""

    exit_code = 143


class SenclipWarning(UserWarning):
    """Something was adjusted on the user's behalf (prompt truncated, CRS odd, ...)."""
