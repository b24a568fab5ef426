"""sweep.losses.cross_entropy against torch's own, values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sweep.losses import cross_entropy


@pytest.mark.parametrize("scale", [1.0, 80.0])  # 80: exp overflows without the max shift
def test_cross_entropy_matches_torch_values_and_gradients(scale: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 17, 10, generator=g) * scale).requires_grad_()
    target = torch.randint(0, 10, (3, 17), generator=g)
    weights = torch.rand(3, 17, generator=g)  # an upstream gradient that is not all ones

    ours = cross_entropy(logits, target)
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), logits)
    ref = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(3, 17)
    (grad_ref,) = torch.autograd.grad((ref * weights).sum(), logits)

    assert ours.shape == target.shape
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_ours, grad_ref, rtol=1e-5, atol=1e-6)


def test_cross_entropy_of_a_confident_right_answer_is_near_zero_and_wrong_is_large() -> None:
    logits = torch.tensor([[10.0, -10.0], [10.0, -10.0]])
    loss = cross_entropy(logits, torch.tensor([0, 1]))
    assert loss[0].item() < 1e-6
    assert loss[1].item() == pytest.approx(20.0, abs=1e-4)
