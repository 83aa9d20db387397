"""
LIIR in TorchRL's multi-agent MAPPO example
===========================================

TorchRL's multi-agent examples train MAPPO on a VMAS scenario in about a hundred lines: a ``Collector``, a
decentralised ``MultiAgentMLP`` policy, a centralised ``MultiAgentMLP`` critic, ``ClipPPOLoss`` with the
agent-level done keys, a replay buffer of the batch's steps and minibatch epochs. The repository holds that script,
``examples/mappo_vmas.py``, and its twin with LIIR, ``examples/liir_vmas.py``. Outside the regions marked
``# <<< differs from the twin`` they are identical, line for line (a test checks it). This page shows each marked
region of both scripts, read from the files themselves, then runs the LIIR script on a tiny budget. It needs
VMAS (``pip install -e ".[vmas]"``).

What stays is TorchRL's example as it is: VMAS's ``navigation`` with 3 agents and continuous actions (forces),
each agent with its own reward at ``("agents", "reward")``, no global state, a ``TanhNormal`` policy whose
parameters come from a ``MultiAgentMLP`` shared by the agents, and a centralised ``MultiAgentMLP`` critic that
reads every agent's observation.
"""

# %%
# The imports
# -----------
#
# MAPPO imports its loss and the replay buffer:
#
# .. literalinclude:: /examples/mappo_vmas.py
#    :start-after: # <<< differs from the twin: the loss and the batch handling's imports
#    :end-before: # >>>
#
# LIIR imports its loss and its two extra networks:
#
# .. literalinclude:: /examples/liir_vmas.py
#    :start-after: # <<< differs from the twin: the loss and the batch handling's imports
#    :end-before: # >>>
#
# The minibatch settings go with the replay buffer:
#
# .. literalinclude:: /examples/mappo_vmas.py
#    :start-after: # <<< differs from the twin: the minibatch epochs' settings
#    :end-before: # >>>
#
# The loss and its optimiser
# --------------------------
#
# MAPPO builds ``ClipPPOLoss``, one Adam over every parameter of the loss, and a replay buffer of the batch's
# steps:
#
# .. literalinclude:: /examples/mappo_vmas.py
#    :start-after: # <<< differs from the twin: the loss and its optimiser
#    :end-before: # >>>
#
# LIIR adds two networks: the intrinsic reward r_in_η(o_i, u_i), which takes the continuous action as an input,
# and the per-agent proxy critic. The example's centralised critic stays, as LIIR's extrinsic critic V_ex (its
# per-agent outputs are averaged into V_ex). ``set_keys`` and ``make_value_estimator`` are TorchRL's calls,
# unchanged. One Adam may still hold every network; the policy's step is wrapped in ``InnerStep``, because the
# meta-gradient of η differentiates through exactly that step (Adam's, with the policy's gradient clip):
#
# .. literalinclude:: /examples/liir_vmas.py
#    :start-after: # <<< differs from the twin: the loss and its optimiser
#    :end-before: # >>>
#
# The optimiser steps
# -------------------
#
# MAPPO flattens the batch into steps and takes several epochs of minibatch steps:
#
# .. literalinclude:: /examples/mappo_vmas.py
#    :start-after: # <<< differs from the twin: the optimiser steps
#    :end-before: # >>>
#    :dedent: 4
#
# LIIR's TD(λ) estimates run along time, and its meta-gradient models one optimiser step on the whole batch, so
# the loss takes the collector's ``[envs, T]`` batch as it comes and the optimiser steps once. The gradient clip
# covers the other networks only: the policy's clip is ``InnerStep``'s, applied at ``optimizer.step()``. A clip
# over all of ``loss_module.parameters()``, as in MAPPO's lines, would change the policy's step, and
# ``InnerStep`` refuses it with a one-line error.
#
# .. literalinclude:: /examples/liir_vmas.py
#    :start-after: # <<< differs from the twin: the optimiser steps
#    :end-before: # >>>
#    :dedent: 4
#
# Everything else in the loop is the example's: the advantage estimate before the loss, the weight update, the
# logged episode reward.
#
# Run it
# ------
#
# The script as it is, on a tiny budget: 8 batches of 10 navigation scenarios × 50 steps. Eight batches are far
# too few to learn navigation (the script's default is 600,000 steps): the run shows that the pieces fit, not what
# LIIR achieves.

import os
import subprocess
import sys
from pathlib import Path

# the checkout's examples/ (this page runs from the checkout, in docs/tutorials or above it)
script = next(directory / "examples" / "liir_vmas.py" for directory in [Path.cwd(), *Path.cwd().parents]
              if (directory / "examples" / "liir_vmas.py").is_file())
run = subprocess.run(
    [sys.executable, str(script), "--max-steps", "50", "--frames-per-batch", "500", "--frames", "4000"],
    capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
)
print(run.stdout.strip().splitlines()[-1])
