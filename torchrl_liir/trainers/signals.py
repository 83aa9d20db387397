"""SIGTERM and SIGINT (Ctrl-C) stop a run cleanly: checkpoint, summary, one line saying how to resume."""
from __future__ import annotations

import signal
import threading
from types import FrameType

from torchrl.trainers import Trainer


class RunInterrupted(Exception):
    """The run stopped on a signal; ``exit_code`` is the shell's for that signal (128 + its number), ``resumable``
    whether a checkpoint exists to resume from."""

    def __init__(self, signum: int, message: str = "", resumable: bool = True) -> None:
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum, self.resumable = signum, resumable
        self.exit_code = 128 + signum


class GracefulStop:
    """While active, the first SIGTERM or SIGINT asks ``trainer`` to stop after its current update (TorchRL's
    ``request_stop``: the Trainer saves a checkpoint and leaves its loop); before the trainer exists it is recorded,
    and :meth:`stop_if_requested` raises :class:`RunInterrupted` at the builder's next safe point. The first signal
    never raises in the handler: the handler may run inside a library's callback (JAX's garbage-collection one),
    which would discard the exception and the signal with it. A second signal stops at once."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.trainer: Trainer | None = None
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = signum
        if not first:
            raise RunInterrupted(signum)
        if self.trainer is not None:
            self.trainer.request_stop(signal.Signals(signum).name)

    def stop_if_requested(self, resumable: bool) -> None:
        """Raises :class:`RunInterrupted` if a signal came before training began (``resumable``: a checkpoint
        exists)."""
        if self.signum is not None:
            name = signal.Signals(self.signum).name
            raise RunInterrupted(self.signum, f"stopped by {name} before training began", resumable)

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
