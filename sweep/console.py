"""The per-epoch table a single run prints, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable

from tqdm import tqdm

__all__ = ["EpochTable"]

_COLUMNS = (
    ("epoch", "epoch", "{:>5.0f}"),
    ("train_loss", "tr loss", "{:>8.4f}"),
    ("train_acc", "tr acc", "{:>7.4f}"),
    ("val_loss", "val loss", "{:>8.4f}"),
    ("val_acc", "val acc", "{:>7.4f}"),
    ("gap_acc", "gap acc", "{:>+8.4f}"),
    ("weight_l1", "|W|_1", "{:>9.2f}"),
    ("weight_l2", "|W|_2", "{:>8.3f}"),
    ("sparsity", "sparsity", "{:>8.4f}"),
    ("epoch_seconds", "sec", "{:>6.2f}"),
)


class EpochTable:
    """Prints a header, then one row per epoch; ``progress`` adds a tqdm bar below the table."""

    def __init__(
        self, epochs: int, *, progress: bool = True, emit: Callable[[str], None] | None = None
    ) -> None:
        self._bar = tqdm(total=epochs, unit="epoch", leave=False) if progress else None
        self._emit = emit or (self._bar.write if self._bar is not None else print)
        self._header_done = False

    def header(self) -> str:
        widths = [len(fmt.format(0.0)) for _, _, fmt in _COLUMNS]
        return " ".join(title.rjust(w) for (_, title, _), w in zip(_COLUMNS, widths, strict=True))

    def format(self, row: dict[str, float]) -> str:
        return " ".join(fmt.format(row.get(key, float("nan"))) for key, _, fmt in _COLUMNS)

    def row(self, row: dict[str, float]) -> None:
        if not self._header_done:
            self._emit(self.header())
            self._header_done = True
        self._emit(self.format(row))
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(val_acc=f"{row.get('val_acc', float('nan')):.4f}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
