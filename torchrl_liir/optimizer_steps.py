"""One guarded optimiser step over groups of parameters, each with its own gradient clip: the step every trainer
and hook of this package takes, below the algorithms and the trainers that use it."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class OptimizerGroup:
    """An optimiser and the clip of its parameters' gradient norm (``None``: not clipped)."""

    optimizer: torch.optim.Optimizer
    max_grad_norm: float | None

    @property
    def params(self) -> list[torch.nn.Parameter]:
        """The parameters of every parameter group of the optimiser."""
        return [p for group in self.optimizer.param_groups for p in group["params"]]


class NonFiniteError(RuntimeError):
    """A loss term, gradient norm or parameter became NaN or infinite. ``undo``, set when a step made the
    parameters non-finite, puts back the parameters and optimiser states from before that step."""

    undo = None


def _check_finite(values: dict[str, torch.Tensor], message: str, update: int) -> None:
    if not torch.stack([v.detach().float() for v in values.values()]).isfinite().all():
        name, value = next((n, v) for n, v in values.items() if not torch.isfinite(v))
        raise NonFiniteError(message.format(name=name, value=value.item(), update=update))


def guarded_step(groups: dict[str, OptimizerGroup], terms: dict[str, torch.Tensor], update: int
                 ) -> dict[str, torch.Tensor]:
    """One optimiser step of every group on the summed loss ``terms``: backward, each group's own clip, step;
    returns each group's ``grad_norm_<group>`` before clipping, then each one's ``update_norm_<group>``, the L2
    norm of the change the step made to its parameters, ``‖θ_after − θ_before‖`` (what the optimiser did with the
    gradient: Adam's step hardly depends on its size). Raises :class:`NonFiniteError` (naming ``update``) as soon
    as a term, a gradient norm or, after the step, a parameter is NaN or infinite."""
    _check_finite(terms, "{name}={value} at update {update}", update)
    for group in groups.values():
        group.optimizer.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    norms = {f"grad_norm_{name}": torch.nn.utils.clip_grad_norm_(group.params, group.max_grad_norm or math.inf)
             for name, group in groups.items()}
    _check_finite(norms, "{name}={value} at update {update}", update)
    before = {name: _snapshot(group) for name, group in groups.items()}
    for group in groups.values():
        group.optimizer.step()
    # The largest |parameter| of each group (foreach max-norm): NaN or inf exactly when one of them is.
    largest = {name: torch.nn.utils.get_total_norm(group.params, norm_type=math.inf) for name, group in groups.items()}
    try:
        _check_finite(largest, "{name} parameters became {value} in the step of update {update}", update)
    except NonFiniteError as err:
        err.undo = lambda: [_restore(groups[name], saved) for name, saved in before.items()]
        raise
    # The copies kept for the undo give each step's size on the device, with no sync of its own.
    updates = {f"update_norm_{name}": _change_norm(group.params, before[name][0]) for name, group in groups.items()}
    return {name: norm.detach() for name, norm in {**norms, **updates}.items()}


def _change_norm(params: list[torch.Tensor], saved: list[torch.Tensor]) -> torch.Tensor:
    """``‖params − saved‖₂`` over all the tensors together."""
    with torch.no_grad():
        return torch.nn.utils.get_total_norm([p - s for p, s in zip(params, saved)], norm_type=2.0)


def _snapshot(group: OptimizerGroup) -> tuple[list[torch.Tensor], dict]:
    """Copies of a group's parameters and optimiser state (a few MB at most for these networks)."""
    state = group.optimizer.state_dict()
    copied = {k: {n: v.clone() if isinstance(v, torch.Tensor) else v for n, v in s.items()}
              for k, s in state["state"].items()}
    return [p.detach().clone() for p in group.params], {**state, "state": copied}


def _restore(group: OptimizerGroup, saved: tuple[list[torch.Tensor], dict]) -> None:
    params, state = saved
    with torch.no_grad():
        for p, value in zip(group.params, params):
            p.copy_(value)
    group.optimizer.load_state_dict(state)
