"""Models of the course notes: an MLP with dropout after each hidden layer, and logistic regression."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["build_model", "weight_matrices"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def build_model(
    *,
    kind: str,
    n_features: int,
    n_classes: int,
    hidden: Sequence[int] = (),
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> nn.Sequential:
    """Build ``mlp`` (Linear → [BatchNorm] → activation → [Dropout] per hidden layer) or ``logreg``.

    Example:
        >>> build_model(kind="mlp", n_features=64, n_classes=10, hidden=[32], dropout=0.5)
        Sequential(...)
    """
    if kind == "logreg":
        return nn.Sequential(nn.Linear(n_features, n_classes))
    if kind != "mlp":
        raise ValueError(f"model.name={kind!r}: allowed mlp, logreg")
    layers: list[nn.Module] = []
    width_in = n_features
    for width in hidden:
        layers.append(nn.Linear(width_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(_ACTIVATIONS[activation]())
        if dropout > 0.0:
            layers.append(nn.Dropout(dropout))
        width_in = width
    layers.append(nn.Linear(width_in, n_classes))
    return nn.Sequential(*layers)


def weight_matrices(model: nn.Module) -> list[nn.Parameter]:
    """Parameters with two or more dimensions: the weights penalties and norms are about.

    Biases and batch-norm scales are left out, as in 004's notes (and nanoGPT's decay groups).
    """
    return [p for p in model.parameters() if p.dim() >= 2]
