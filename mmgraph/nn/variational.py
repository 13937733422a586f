r"""A Gaussian variational embedding per node type, its KL term, and the KL warm-up schedule."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmgraph.nn.named import NamedModuleDict

__all__ = ["VariationalHead", "kl_divergence", "KLSchedule"]


class VariationalHead(nn.Module):
    r"""Per node type mean and log-variance of a diagonal Gaussian posterior (as in VGAE).

    .. math::
        \mu_v = W^{\mu}_t x_v + b^{\mu}_t, \qquad \log\sigma^2_v = W^{\sigma}_t x_v + b^{\sigma}_t,
        \qquad z_v = \mu_v + \sigma_v \odot \epsilon,\ \epsilon \sim \mathcal N(0, I)

    In training :math:`z` is sampled (reparameterisation trick); in eval mode :math:`z = \mu`.
    The log-variance is clamped to ``[-logvar_limit, logvar_limit]`` so ``exp`` cannot overflow.

    Shapes:
        - input: ``x_dict {t: [N_t, in_channels]}``
        - output: ``(z_dict, mu_dict, logvar_dict)``, each ``{t: [N_t, out_channels]}``

    Example::

        head = VariationalHead(64, 32, ["clip", "word"])
        z, mu, logvar = head({"clip": torch.randn(5, 64), "word": torch.randn(3, 64)})
        kl = kl_divergence(mu, logvar)   # scalar
    """

    def __init__(self, in_channels: int, out_channels: int, node_types: list[str], *,
                 logvar_limit: float = 10.0):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.node_types = list(node_types)
        self.logvar_limit = logvar_limit
        # formerly lists by position over node_types (read back by `legacy`)
        self.lin_mu = NamedModuleDict({t: nn.Linear(in_channels, out_channels) for t in self.node_types},
                                      legacy="position")
        self.lin_logvar = NamedModuleDict({t: nn.Linear(in_channels, out_channels) for t in self.node_types},
                                          legacy="position")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in self.lin_mu.values():
            lin.reset_parameters()
        for lin in self.lin_logvar.values():
            lin.reset_parameters()
            # Start with small variances (sigma ~ 0.37) so early samples do not drown the mean.
            nn.init.constant_(lin.bias, -2.0)

    def forward(self, x_dict: dict[str, Tensor]
                ) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
        z_dict, mu_dict, logvar_dict = {}, {}, {}
        for t, x in x_dict.items():
            mu = self.lin_mu[t](x)
            logvar = self.lin_logvar[t](x).clamp(-self.logvar_limit, self.logvar_limit)
            if self.training:
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            else:
                z = mu
            z_dict[t], mu_dict[t], logvar_dict[t] = z, mu, logvar
        return z_dict, mu_dict, logvar_dict

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"node_types={self.node_types}, logvar_limit={self.logvar_limit})")


def kl_divergence(mu_dict: dict[str, Tensor], logvar_dict: dict[str, Tensor], *,
                  free_bits: float = 0.0) -> Tensor:
    r"""KL divergence from :math:`\mathcal N(\mu, \sigma^2)` to :math:`\mathcal N(0, I)`, mean over nodes.

    .. math::
        \mathrm{KL}_j = \frac{1}{N} \sum_v \tfrac12 \left(\mu_{v,j}^2 + \sigma_{v,j}^2 - 1
            - \log \sigma_{v,j}^2\right), \qquad
        \mathrm{KL} = \sum_j \max(\lambda, \mathrm{KL}_j)

    with :math:`N` the nodes of all types together and :math:`\lambda` = ``free_bits`` nats per
    dimension (Kingma et al. 2016, "Improved variational inference with inverse autoregressive
    flow"): a dimension whose mean KL is below :math:`\lambda` is not pushed further towards
    the prior. With ``free_bits=0`` this is the mean over nodes of the per-node KL.

    Returns a scalar in float32 (or the inputs' dtype if wider); 0 for empty input.
    """
    if free_bits < 0:
        raise ValueError(f"free_bits must be >= 0, got {free_bits}")
    mus = [mu_dict[t] for t in mu_dict if mu_dict[t].numel()]
    if not mus:
        any_mu = next(iter(mu_dict.values()), None)
        return torch.zeros((), device=any_mu.device if any_mu is not None else None)
    mu = torch.cat(mus, dim=0)
    logvar = torch.cat([logvar_dict[t] for t in mu_dict if mu_dict[t].numel()], dim=0)
    # bfloat16 inputs: sum the KL in float32 (one rounding per term would swamp small KLs)
    mu = mu.to(torch.promote_types(mu.dtype, torch.float32))
    logvar = logvar.to(torch.promote_types(logvar.dtype, torch.float32))
    per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean(dim=0)
    if free_bits > 0:
        per_dim = per_dim.clamp_min(free_bits)
    return per_dim.sum()


class KLSchedule:
    """The KL weight per epoch: linear warm-up from 0 to ``max_weight`` (Bowman et al. 2016).

    ``schedule(epoch)`` with epochs counted from 0 is ``max_weight * min(1, epoch / warmup_epochs)``:
    0 at epoch 0, ``max_weight`` from epoch ``warmup_epochs`` on; always ``max_weight`` when
    ``warmup_epochs == 0``.

    Example::

        schedule = KLSchedule(1e-3, warmup_epochs=10)
        schedule(0), schedule(5), schedule(20)   # 0.0, 5e-4, 1e-3
    """

    def __init__(self, max_weight: float, *, warmup_epochs: int = 0):
        if max_weight < 0 or warmup_epochs < 0:
            raise ValueError(f"KLSchedule needs max_weight >= 0 and warmup_epochs >= 0, got "
                             f"{max_weight}, {warmup_epochs}")
        self.max_weight = float(max_weight)
        self.warmup_epochs = int(warmup_epochs)

    def __call__(self, epoch: int) -> float:
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if self.warmup_epochs == 0:
            return self.max_weight
        return self.max_weight * min(1.0, epoch / self.warmup_epochs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.max_weight}, warmup_epochs={self.warmup_epochs})"
