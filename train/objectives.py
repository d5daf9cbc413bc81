"""Training objectives of the autoencoder families, beside (not inside) the models.

Every objective takes the model, a clean batch and the objective settings and returns the loss to
minimise and a dict of its parts (floats, for progress lines and validation). Which family trains with
which objective is said in the family's spec (train/families/<name>.py), not here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import jacrev, vmap


@dataclass(frozen=True)
class ObjectiveConfig:
    """Weights and corruptions of the family objectives (only the ones a family uses matter)."""

    l1: float = 1e-3  # sparse: weight of the mean L1 norm of the hidden activations
    kl_weight: float = 0.0  # sparse: weight of the KL sparsity penalty (0 = off)
    rho: float = 0.05  # sparse: target mean activation for the KL penalty
    contractive: float = 0.1  # contractive: lambda in front of ||J||_F^2
    beta: float = 1.0  # variational: weight of the KL term of the ELBO
    mask_min: float = 0.2  # denoising: masking noise sets this share of inputs to zero ...
    mask_max: float = 0.5  # ... up to this share (uniform per sample)
    sigma: float = 0.3  # denoising: Gaussian noise sigma on the [0, 1] scale
    p_mask: float = 0.5  # denoising: share of samples with masking noise (the rest get Gaussian)


Parts = dict[str, float]
# (model, clean batch, settings, generator) -> (loss, parts); a family names its objective in its FamilySpec.
Objective = Callable[[nn.Module, torch.Tensor, ObjectiveConfig, torch.Generator | None], tuple[torch.Tensor, Parts]]


def reconstruction(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per element."""
    return F.mse_loss(pred, target)


def l1_sparsity(h: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the L1 norm of the activations."""
    return h.abs().sum(dim=1).mean()


def kl_sparsity(h: torch.Tensor, rho: float, eps: float = 1e-6) -> torch.Tensor:
    """Sum over units of KL(rho || rho_hat), rho_hat = a unit's mean activation over the batch (units in [0, 1])."""
    rho_hat = h.mean(dim=0).clamp(eps, 1 - eps)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def jacobian_frobenius_sq(encoder: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Exact ||d encoder(x) / dx||_F^2 for each sample of ``x`` (B, F) -> (B,); differentiable."""

    def one(xi: torch.Tensor) -> torch.Tensor:
        return encoder(xi.unsqueeze(0)).squeeze(0)  # (Z,)

    jac = vmap(jacrev(one))(x)  # (B, Z, F)
    return jac.pow(2).sum(dim=(1, 2))


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per sample, summed over latent dimensions (nats)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def corrupt_dense(x: torch.Tensor, cfg: ObjectiveConfig, generator: torch.Generator | None = None,
                  kind: str | None = None) -> torch.Tensor:
    """Masking noise (a random share in [mask_min, mask_max] of inputs set to 0) or Gaussian noise, per sample.

    ``kind`` = "mask" or "gaussian" forces one corruption for every sample (evaluation).
    """
    b = x.shape[0]
    if kind is None:
        use_mask = torch.rand(b, generator=generator) < cfg.p_mask
    elif kind in ("mask", "gaussian"):
        use_mask = torch.full((b,), kind == "mask")
    else:
        msg = f"corruption kind {kind!r}; expected 'mask' or 'gaussian'"
        raise ValueError(msg)
    share = cfg.mask_min + (cfg.mask_max - cfg.mask_min) * torch.rand(b, generator=generator)
    keep = torch.rand(x.shape, generator=generator) >= share.view(-1, *([1] * (x.dim() - 1)))
    masked = x * keep
    noisy = (x + cfg.sigma * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    sel = use_mask.view(-1, *([1] * (x.dim() - 1)))
    return torch.where(sel, masked, noisy)


def plain_objective(model: nn.Module, x: torch.Tensor, cfg: ObjectiveConfig,
                    gen: torch.Generator | None) -> tuple[torch.Tensor, Parts]:
    """Reconstruction MSE of the clean batch."""
    pred, _ = model(x)
    loss = reconstruction(pred, x)
    return loss, {"mse": loss.item()}


def sparse_objective(model: nn.Module, x: torch.Tensor, cfg: ObjectiveConfig,
                     gen: torch.Generator | None) -> tuple[torch.Tensor, Parts]:
    """Reconstruction MSE plus the L1 and/or KL sparsity penalties on the hidden activations."""
    h = model.encode(x)
    mse = reconstruction(model.decode(h), x)
    loss = mse
    parts = {"mse": mse.item(), "mean_activation": h.mean().item()}
    if cfg.l1:
        l1 = l1_sparsity(h)
        loss = loss + cfg.l1 * l1
        parts["l1"] = l1.item()
    if cfg.kl_weight:
        kl = kl_sparsity(h, cfg.rho)
        loss = loss + cfg.kl_weight * kl
        parts["kl_sparsity"] = kl.item()
    return loss, parts


def denoising_objective(model: nn.Module, x: torch.Tensor, cfg: ObjectiveConfig,
                        gen: torch.Generator | None) -> tuple[torch.Tensor, Parts]:
    """Reconstruction MSE of the clean batch from a corrupted copy (``corrupt_dense``)."""
    pred, _ = model(corrupt_dense(x, cfg, gen))
    loss = reconstruction(pred, x)  # against the clean input
    return loss, {"mse": loss.item()}


def contractive_objective(model: nn.Module, x: torch.Tensor, cfg: ObjectiveConfig,
                          gen: torch.Generator | None) -> tuple[torch.Tensor, Parts]:
    """Reconstruction MSE plus lambda * ||J||_F^2 of the encoder's Jacobian."""
    pred, _ = model(x)
    mse = reconstruction(pred, x)
    jac = jacobian_frobenius_sq(model.encode, x).mean()
    return mse + cfg.contractive * jac, {"mse": mse.item(), "jacobian_fro_sq": jac.item()}


def elbo_terms(model: nn.Module, x: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reconstruction negative log-likelihood, KL, mean-path MSE), each per sample.

    The likelihood is Bernoulli over pixels in [0, 1] (binary cross-entropy summed over features).
    """
    mean, logvar = model.encode(x)
    z = model.sample_posterior(mean, logvar, generator)
    logits_free = model.decode(z).clamp(1e-6, 1 - 1e-6)
    nll = F.binary_cross_entropy(logits_free, x, reduction="none").flatten(1).sum(dim=1)
    kl = gaussian_kl(mean, logvar)
    with torch.no_grad():
        mse = (model.decode(mean) - x).pow(2).flatten(1).mean(dim=1)
    return nll, kl, mse


def variational_objective(model: nn.Module, x: torch.Tensor, cfg: ObjectiveConfig,
                          gen: torch.Generator | None) -> tuple[torch.Tensor, Parts]:
    """The negative ELBO per feature (Bernoulli likelihood, beta-weighted KL)."""
    nll, kl, mse = elbo_terms(model, x, gen)
    loss = (nll + cfg.beta * kl).mean() / x[0].numel()  # per feature, so learning rates match the others
    return loss, {"mse": mse.mean().item(), "nll": nll.mean().item(), "kl": kl.mean().item()}
