"""The sampler's coordinates that are not the law's parameters (a scale term's drop, a parameter's product with
the term it multiplies) leave every parameter's prior as the law declares it: forward draws of the model, with the
likelihood left out, match the declared priors."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from numpyro.infer import Predictive
from scipy import stats

from bayesmix.data import read_runs
from bayesmix.design import observed_from_table, reference_scale
from bayesmix.laws import get_law
from bayesmix.laws.components import scale_shares
from bayesmix.model import DROP_PREFIX, SCALED_PREFIX, make_model, resolve_priors
from bayesmix.priors import Prior
from bayesmix.simulate import sweep_design

DOMAINS = ("web", "code", "books")
DRAWS = 4000


def _observed():
    d = sweep_design(DOMAINS, (5e7, 2e8), mixtures_per_size=5, checkpoints=4, tokens_per_param=20, seed=0)
    for t in DOMAINS:
        d[f"{t}_loss"] = 3.0
    table = read_runs(d, quiet=True)
    N0, D0 = reference_scale(table.model_size), reference_scale(table.n_tokens)
    obs, _ = observed_from_table(table, table.targets, N0, D0, np.unique(table.model_size), checkpoints=True)
    return table, obs


def _forward(law_name: str, overrides=None):
    table, obs = _observed()
    law = get_law(law_name)
    priors = resolve_priors(law, table.domains, table.targets, overrides, True)
    model = make_model(law, table.domains, table.targets, priors, True)
    draws = Predictive(model, num_samples=DRAWS)(jax.random.PRNGKey(3), obs)
    return model, priors, {k: np.asarray(v) for k, v in draws.items()}


def _same_law(draws: np.ndarray, prior: Prior) -> float:
    """KS p-value of the draws (every element pooled) against the prior's one-dimensional law."""
    ref = {"Normal": stats.norm, "LogNormal": stats.lognorm}[prior.family]
    if prior.family == "Normal":
        cdf = ref(prior.params["loc"], prior.params["scale"]).cdf
    else:
        cdf = ref(prior.params["scale"], scale=np.exp(prior.params["loc"])).cdf
    return stats.kstest(draws[:, 0].ravel(), cdf).pvalue  # one target: its elements are independent draws


def test_the_joint_laws_mixture_slopes_keep_their_prior_when_sampled_through_their_product():
    model, priors, draws = _forward("joint")
    for name, term in (("g_A", "A"), ("g_B", "B")):
        assert SCALED_PREFIX + name in model.prior_sites and name not in model.prior_sites
        assert SCALED_PREFIX + name in model.auxiliary_sites
        assert _same_law(draws[name], priors[name]) > 1e-3
        # the sampled coordinate is the product with the term the parameter multiplies in the loss
        share = scale_shares({k: draws[k] for k in ("slope_N", "alpha", "slope_D", "beta")})[term]
        np.testing.assert_allclose(draws[SCALED_PREFIX + name], draws[name] * share[..., None], rtol=1e-5)
    # and the draws are not just any Normal: a wrong scale (the product's sd taken for the parameter's) fails
    assert _same_law(draws[SCALED_PREFIX + "g_B"], priors["g_B"]) < 1e-6


@pytest.mark.parametrize("law_name", ["joint", "additive"])
def test_the_scale_slopes_keep_their_prior_when_sampled_through_their_drop(law_name):
    model, priors, draws = _forward(law_name)
    for slope in ("slope_N", "slope_D"):
        assert DROP_PREFIX + slope in model.auxiliary_sites
        assert _same_law(draws[slope], priors[slope]) > 1e-3


def test_a_prior_of_another_family_is_sampled_as_it_is():
    model, priors, draws = _forward("joint", {"g_A": "StudentT(3, 0, 1)"})
    assert "g_A" in model.prior_sites and SCALED_PREFIX + "g_A" not in model.prior_sites
    assert SCALED_PREFIX + "g_B" in model.prior_sites  # the other one keeps its coordinate
    assert stats.kurtosis(draws["g_A"].ravel()) > 1.0  # Student t with 3 degrees of freedom: heavy tails


def test_a_point_estimate_maximises_the_parameters_density_whatever_the_sampled_coordinates():
    # The product's volume (1 / c per element) is part of the density NUTS samples, so the sampled coordinates'
    # mode moves with it; a point estimate (hold-out refits, ``fit_mode``) must not: its objective is the same
    # function of the parameters as a model that samples g_A and g_B as they are.
    import dataclasses

    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from bayesmix import inference
    from bayesmix.laws.joint import Joint

    class Plain(Joint):  # the same law with g_A, g_B sampled as they are
        def params(self, domains, targets):
            return {k: dataclasses.replace(p, scaled_by=None) for k, p in super().params(domains, targets).items()}

    table, obs = _observed()
    comps = {}
    for name, law in (("scaled", get_law("joint")), ("plain", Plain())):
        priors = resolve_priors(law, table.domains, table.targets, None, True)
        model = make_model(law, table.domains, table.targets, priors, True)
        comps[name] = (model, inference._compiled(model, (obs,), None))
    assert comps["plain"][0].coordinate_log_jacobian is None and comps["plain"][1].point_value_and_grad is None
    plain, scaled = comps["plain"][1], comps["scaled"][1]
    for key in jax.random.split(jax.random.PRNGKey(5), 3):
        z_plain = np.asarray(plain.starts(key, 2)[1])  # a prior draw, unconstrained
        p = {k: np.asarray(v[0]) for k, v in plain.constrain(jnp.asarray(z_plain[None]), (obs,)).items()}
        sites = plain.unravel(jnp.asarray(z_plain))
        share = scale_shares(p)
        sites = {k: v for k, v in sites.items() if k not in ("g_A", "g_B")}
        sites[SCALED_PREFIX + "g_A"] = p["g_A"] * share["A"][..., None]
        sites[SCALED_PREFIX + "g_B"] = p["g_B"] * share["B"][..., None]
        z_scaled = ravel_pytree({k: jnp.asarray(v) for k, v in sites.items()})[0]  # a dict ravels in key order
        assert z_scaled.shape == (scaled.dim,)
        point = float(scaled.point_value_and_grad(z_scaled, (obs,))[0])
        sampled = float(scaled.value_and_grad(z_scaled, (obs,))[0])
        reference = float(plain.value_and_grad(jnp.asarray(z_plain), (obs,))[0])
        np.testing.assert_allclose(point, reference, rtol=1e-9, atol=1e-6)
        # and the sampled coordinates' potential is not that objective: it carries the volume, log c per element
        K = len(DOMAINS)
        np.testing.assert_allclose(sampled - point, K * (np.log(share["A"]).sum() + np.log(share["B"]).sum()))
