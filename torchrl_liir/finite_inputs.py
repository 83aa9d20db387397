"""The first NaN or infinite value an env gave a batch: rewards, observations and states, on played steps only."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey

ENV_OUTPUTS = ("reward", "observation", "state")


def first_non_finite(batch: TensorDictBase, played: torch.Tensor | None = None,
                     names: tuple[str, ...] = ENV_OUTPUTS) -> tuple[NestedKey, list[int], float] | None:
    """``(key, index, value)`` of the first non-finite entry among ``batch``'s floating leaves named in ``names``
    (the last part of the key), on the entries ``played`` marks (``[*batch]``, broadcast over the entry's own
    dims); ``None`` when every one is finite."""
    checked = {}
    for key, value in batch.items(include_nested=True, leaves_only=True):
        name = key if isinstance(key, str) else key[-1]
        if name not in names or not value.is_floating_point():
            continue
        bad = ~torch.isfinite(value)
        if played is not None:
            bad &= played.reshape(*played.shape, *(1,) * (bad.dim() - played.dim()))
        checked[key] = bad
    if not checked or not torch.stack([bad.any() for bad in checked.values()]).any():  # one wait for the device
        return None
    key, bad = next((key, bad) for key, bad in checked.items() if bad.any())
    index = [int(i) for i in bad.nonzero()[0]]
    return key, index, batch.get(key)[tuple(index)].item()


def refuse_non_finite(owner: str, batch: TensorDictBase, played: torch.Tensor | None = None) -> None:
    """Raises ``ValueError`` in one line naming the first non-finite env output of ``batch`` (see
    :func:`first_non_finite`): a loss fed one returns NaN losses and gradients."""
    found = first_non_finite(batch, played)
    if found is not None:
        key, index, value = found
        raise ValueError(f"{owner}: {key!r}={value} at index {index} of the batch: the losses and gradients "
                         "would all be NaN")


def refuse_empty(owner: str, batch: TensorDictBase) -> None:
    """Raises ``ValueError`` in one line when ``batch`` holds no entry: a loss over nothing has no gradient."""
    if batch.batch_size.numel() == 0:  # TensorDict.numel() counts an empty batch as 1
        raise ValueError(f"{owner}: the batch is empty (batch_size {list(batch.batch_size)}): there is nothing "
                         "to learn from")


class InputChecks:
    """A loss's refusal, in one line, of an empty batch and of a non-finite env output (``check_inputs``: on by
    default, so a loss used on its own refuses them; the trainer, which checks every batch as it is collected,
    turns it off)."""

    check_inputs: bool = True

    def refuse_bad_batch(self, batch: TensorDictBase) -> None:
        """:func:`refuse_empty`, then :func:`refuse_non_finite` on every entry where ``check_inputs`` is on."""
        refuse_empty(type(self).__name__, batch)
        if self.check_inputs:
            refuse_non_finite(type(self).__name__, batch)
