"""A parameter-shared GRU over an agent dimension (the paper's GRU-64 agents, §5.2.1)."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import nn
from torchrl.data import Composite, Unbounded
from torchrl.envs import TensorDictPrimer
from torchrl.modules import recurrent_mode


class MultiAgentGRU(TensorDictModuleBase):
    """One GRU cell shared by all agents, reading ``[*B, n_agents, input_size]``.

    TorchRL's ``GRUModule`` rejects an agent dimension, hence this module. It
    follows ``GRUModule``'s protocol: in step mode (collectors) it reads the
    hidden state from ``hidden_key`` (zeros when absent), resets it where
    ``is_init`` is set and writes the new one to ``("next", *hidden_key)``. In
    recurrent mode (inside ``torchrl.modules.set_recurrent_mode(True)``, as in
    a loss, or with ``default_recurrent_mode=True`` outside any such context)
    it unrolls a ``[*B, T]`` batch (time last) from the stored hidden state at
    t = 0, resetting to zeros at every ``is_init``, and writes every step's
    hidden state to ``("next", *hidden_key)``. :meth:`make_tensordict_primer`
    registers the hidden state with the environment.

    Args:
        input_size: size of one agent's input at ``in_key``.
        hidden_size: size of the hidden state and of the features written to ``out_key``.
        n_agents: number of agents (the hidden state is ``[*B, n_agents, hidden_size]``).
        in_key, out_key, hidden_key, is_init_key: the keys read and written.
        device: where the parameters live.
        default_recurrent_mode: the mode outside any ``set_recurrent_mode`` context (``None``: step mode).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.modules import set_recurrent_mode
        >>> from torchrl_liir import MultiAgentGRU
        >>> gru = MultiAgentGRU(input_size=4, hidden_size=16, n_agents=3)
        >>> step = TensorDict({"agents": TensorDict({"embedding": torch.randn(8, 3, 4)}, [8, 3]),
        ...                    "is_init": torch.ones(8, 1, dtype=torch.bool)}, [8])
        >>> step = gru(step)  # step mode: one step of 8 envs
        >>> step.get(("agents", "features")).shape, step.get(("next", "agents", "rnn_hidden")).shape
        (torch.Size([8, 3, 16]), torch.Size([8, 3, 16]))
        >>> sequence = TensorDict({"agents": TensorDict({"embedding": torch.randn(2, 5, 3, 4)}, [2, 5, 3]),
        ...                        "is_init": torch.zeros(2, 5, 1, dtype=torch.bool)}, [2, 5])
        >>> with set_recurrent_mode(True):  # as in a loss: [*B, T] unrolled over time
        ...     sequence = gru(sequence)
        >>> sequence.get(("agents", "features")).shape
        torch.Size([2, 5, 3, 16])
        >>> type(gru.make_tensordict_primer()).__name__
        'TensorDictPrimer'
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        n_agents: int,
        *,
        in_key: NestedKey = ("agents", "embedding"),
        out_key: NestedKey = ("agents", "features"),
        hidden_key: NestedKey = ("agents", "rnn_hidden"),
        is_init_key: NestedKey = "is_init",
        device: torch.device | str | None = None,
        default_recurrent_mode: bool | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(hidden_key, str) and len(hidden_key) != 2:
            raise ValueError(f"hidden_key must be a name or a (group, name) pair, got hidden_key={hidden_key!r}")
        self.in_keys = [in_key, is_init_key, hidden_key]
        self.out_keys = [out_key, ("next", *((hidden_key,) if isinstance(hidden_key, str) else hidden_key))]
        self.hidden_size, self.n_agents = hidden_size, n_agents
        self._recurrent_mode = default_recurrent_mode
        # Hand-written cell (not nn.GRUCell / nn.GRU): forward-mode AD and double backward
        # then work on every device, which the fused cuDNN / _thnn_fused_gru_cell kernels do not guarantee.
        self.input_map = nn.Linear(input_size, 3 * hidden_size, device=device)
        self.hidden_map = nn.Linear(hidden_size, 3 * hidden_size, device=device)

    @property
    def recurrent_mode(self) -> bool:
        """Whether :meth:`forward` unrolls a time dim: the global mode if set, else the module default."""
        mode = recurrent_mode()
        return bool(self._recurrent_mode) if mode is None else mode

    def cell(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``torch.nn.GRUCell``'s update: gates r, z and candidate n."""
        x_rz, x_n = self.input_map(x).split([2 * self.hidden_size, self.hidden_size], dim=-1)
        return self._update(x_rz, x_n, h)

    def _update(self, x_rz: torch.Tensor, x_n: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The cell's update from the input projection ``(x_rz, x_n)`` (``input_map(x)``, split)."""
        h_rz, h_n = self.hidden_map(h).split([2 * self.hidden_size, self.hidden_size], dim=-1)
        r, z = torch.sigmoid(x_rz + h_rz).chunk(2, dim=-1)
        return torch.lerp(torch.tanh(torch.addcmul(x_n, r, h_n)), h, z)

    def _unroll(self, x: torch.Tensor, is_init: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Hidden states of a ``[*B, T, n_agents, in]`` sequence from ``h`` ``[*B, n_agents, hidden]``.

        The input projection runs once over the whole sequence; only the hidden one is in the time
        loop. ``is_init`` (``[*B, T, 1]``) resets the hidden state to zeros (``torch.where``: a product
        with a constant mask would be many times slower under forward-mode AD).
        """
        x_rz, x_n = self.input_map(x).split([2 * self.hidden_size, self.hidden_size], dim=-1)
        outputs = []
        for x_rz_t, x_n_t, init in zip(x_rz.unbind(-3), x_n.unbind(-3), is_init.unsqueeze(-1).unbind(-3)):
            h = self._update(x_rz_t, x_n_t, torch.where(init, 0.0, h))
            outputs.append(h)
        return torch.stack(outputs, dim=-3)

    def _initial_hidden(self, tensordict: TensorDictBase, x: torch.Tensor, sequence: bool) -> torch.Tensor:
        """The stored hidden state (of the first step of a sequence), zeros when absent."""
        hidden = tensordict.get(self.in_keys[2], None)
        if hidden is None:
            batch = x.shape[:-3] + x.shape[-2:-1] if sequence else x.shape[:-1]
            return x.new_zeros(*batch, self.hidden_size)
        return (hidden[..., 0, :, :] if sequence else hidden).to(x.dtype)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Writes the GRU features and the next hidden state, one step or a whole ``[*B, T]`` sequence."""
        x = tensordict.get(self.in_keys[0])
        is_init = tensordict.get(self.in_keys[1]).bool()
        if self.recurrent_mode:
            if tensordict.batch_dims == 0:
                raise ValueError("MultiAgentGRU in recurrent mode needs a tensordict with a time batch dim")
            out = next_hidden = self._unroll(x, is_init, self._initial_hidden(tensordict, x, sequence=True))
        else:
            h = self._initial_hidden(tensordict, x, sequence=False)
            out = next_hidden = self.cell(x, torch.where(is_init.unsqueeze(-1), 0.0, h))
        tensordict.set(self.out_keys[0], out)
        tensordict.set(self.out_keys[1], next_hidden)
        return tensordict

    def make_tensordict_primer(self) -> TensorDictPrimer:
        """A primer declaring the hidden state ``[n_agents, hidden_size]`` in the env specs."""
        key = self.in_keys[2]
        spec = Unbounded(shape=(self.n_agents, self.hidden_size))
        if isinstance(key, str):
            return TensorDictPrimer({key: spec}, expand_specs=True)
        # Declare the group with its agent dim so the hidden state stacks like the other agent entries.
        return TensorDictPrimer({key[0]: Composite({key[1]: spec}, shape=(self.n_agents,))}, expand_specs=True)
