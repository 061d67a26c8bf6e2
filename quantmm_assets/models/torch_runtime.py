"""Runtime helpers of the torch backbones: the lazy Lightning import, the device preflight, the CPU thread / determinism
context and the masked loss."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch


@functools.cache
def lightning() -> Any:
    """Import pytorch_lightning on first use (it adds seconds to importing the registry), its info logs off."""
    import pytorch_lightning

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return pytorch_lightning


def preflight(accelerator: str = "auto", devices: str | int = "auto", strategy: str = "auto") -> dict[str, Any]:
    """Report the torch / device environment and what Lightning resolves the request to; ValueError if unmet."""
    pl = lightning()
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "cuda_available": cuda,
        "cuda_device_count": torch.cuda.device_count() if cuda else 0,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "mps_available": mps,
        "cpu_count": os.cpu_count(),
        "cpu_threads": torch.get_num_threads(),
        "requested": {"accelerator": accelerator, "devices": devices, "strategy": strategy},
    }
    acc = str(accelerator).lower()
    if acc in ("gpu", "cuda") and not cuda:
        raise ValueError(
            f"preflight: accelerator={accelerator!r} but CUDA is not available (torch {torch.__version__})"
        )
    if acc == "mps" and not mps:
        raise ValueError(f"preflight: accelerator={accelerator!r} but MPS is not available")
    if isinstance(devices, int) or (isinstance(devices, str) and devices.isdigit()):
        count = int(devices)
        usable = info["cuda_device_count"] if acc in ("gpu", "cuda") or (acc == "auto" and cuda) else os.cpu_count()
        if count < 1 or count > (usable or 0):
            raise ValueError(f"preflight: devices={devices} requested for {accelerator!r} but {usable} exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = pl.Trainer(
                accelerator=accelerator, devices=devices, strategy=strategy, logger=False, enable_checkpointing=False
            )
    except Exception as exc:  # Lightning raises MisconfigurationException / RuntimeError for impossible requests
        raise ValueError(f"preflight: Lightning cannot use {info['requested']}: {exc}") from exc
    name = type(trainer.accelerator).__name__.replace("Accelerator", "").lower()
    info.update(
        accelerator=name,
        devices=trainer.num_devices,
        strategy=type(trainer.strategy).__name__,
        device=str(trainer.strategy.root_device),
    )
    return info


@contextlib.contextmanager
def torch_state(num_threads: int) -> Iterator[None]:
    """Use ``num_threads`` CPU threads (0: unchanged) and restore the thread count and determinism flag after."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    if num_threads:
        torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over columns (with a label) of the per-column MSE over the rows where ``target`` is finite."""
    ok = torch.isfinite(target)
    err = torch.where(ok, pred - torch.nan_to_num(target), torch.zeros_like(pred)) ** 2
    count = ok.sum(dim=0)
    have = count > 0
    if not have.any():
        return pred.sum() * 0.0
    return (err.sum(dim=0)[have] / count[have]).mean()
