"""SIGTERM and SIGINT (Ctrl-C) stop a run cleanly: checkpoint, summary, one line saying how to resume."""
from __future__ import annotations

import signal
import threading
from types import FrameType

from torchrl.trainers import Trainer


class RunInterrupted(Exception):
    """The run stopped on a signal; ``exit_code`` is the shell's for that signal (128 + its number)."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


class GracefulStop:
    """While active, the first SIGTERM or SIGINT asks ``trainer`` to stop after its current update (TorchRL's
    ``request_stop``: the Trainer saves a checkpoint and leaves its loop). A second signal, or one that comes
    before the trainer exists, stops at once with :class:`RunInterrupted`."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.trainer: Trainer | None = None
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = signum
        if self.trainer is None or not first:
            raise RunInterrupted(signum)
        self.trainer.request_stop(signal.Signals(signum).name)

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
