"""Training: the one loop every gradflow domain uses.

:func:`fit` trains a model on tensors, a Dataset or a sampler with progress, validation, early
stopping, atomic resumable checkpoints, seeding, device selection, optional mixed precision and
data-parallel training under ``torchrun``. The helpers below are public because other packages
save model files and pick devices too.
"""

from ._checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ._device import resolve_device, seed_everything
from ._loop import FitResult, TrainingError, fit

__all__ = [
    "CheckpointError",
    "FitResult",
    "TrainingError",
    "fit",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]
