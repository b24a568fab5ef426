"""What the training loop tells the outside world each epoch, without knowing who listens."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullReporter", "Reporter"]


class Reporter(Protocol):
    """Receives the optimized metric each epoch and says whether to stop (pruning)."""

    def report(self, value: float, step: int) -> None:
        """Record ``value`` at ``step`` (the 1-based epoch)."""

    def should_prune(self) -> bool:
        """True when the run should stop now."""


class NullReporter:
    """A single run: nothing listens, nothing prunes."""

    def report(self, value: float, step: int) -> None:
        return None

    def should_prune(self) -> bool:
        return False
