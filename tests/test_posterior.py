"""The one place a law is evaluated over draws (bayesmix.posterior): its kernel, thinning, slicing and bias."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

import bayesmix
from bayesmix import posterior as post_mod
from bayesmix.laws.base import Inputs
from bayesmix.posterior import CHUNK, Posterior, efolds_beyond, thin_index

EXAMPLE = Path(__file__).resolve().parent / "golden" / "example-additive.nc"


@pytest.fixture(scope="module")
def fit():
    return bayesmix.load(EXAMPLE)


def _direct(fit, p, h, N, D):
    """The law's log mean for each draw and row, written out without the kernel (an independent path)."""
    x = Inputs(
        h=h,
        mix=np.arange(len(h)),
        N=np.asarray(N, float),
        D=np.asarray(D, float),
        N0=fit.N0,
        D0=fit.D0,
        own=np.array([list(fit.domains).index(t) for t in fit.targets]),
    )
    return np.stack(
        [np.log(np.asarray(fit.law.mean({k: v[s] for k, v in p.items()}, x))) for s in range(len(p["sigma"]))]
    )


def test_thinning_is_one_even_rule():
    np.testing.assert_array_equal(thin_index(4000, 2000), np.arange(0, 4000, 2))  # the stride where n divides S
    idx = thin_index(3000, 700)
    assert len(idx) == 700 and len(np.unique(idx)) == 700 and idx[0] == 0 and idx[-1] < 3000
    assert np.ptp(np.diff(idx)) <= 1  # evenly spread
    np.testing.assert_array_equal(thin_index(50, 100), np.arange(50))
    np.testing.assert_array_equal(thin_index(50, None), np.arange(50))


def test_kernel_agrees_with_the_law_written_out(fit):
    post = Posterior.from_fit(fit).take(np.arange(0, 4000, 800))  # 5 draws
    rng = np.random.default_rng(0)
    n = CHUNK + 37  # two chunks, the second padded
    h = rng.dirichlet(np.ones(len(fit.domains)), size=n)
    h[::3] = h[0]  # repeated mixtures (checkpoints of one run) and cells
    N = rng.choice([5e7, 2e8, 1e9], size=n)
    D = rng.uniform(1e9, 3e10, size=n)
    got = post.log_means(h, N, D)
    assert got.shape == (5, n, len(fit.targets))
    np.testing.assert_allclose(got, _direct(fit, post.draws, h, N, D), rtol=1e-12, atol=1e-12)


def test_few_compiled_shapes(fit):
    post = Posterior.from_fit(fit).take(slice(0, 8))
    post_mod.clear_kernels()
    h = np.full((300, len(fit.domains)), 0.25)
    for n in range(1, 300, 7):  # 43 row counts
        post.log_means(h[:n], 1e9, 2e10)
    assert post_mod._kernel._cache_size() <= 10  # padded to powers of two: 1, 2, 4, ..., 512


def test_select_targets_is_slicing(fit):
    post = Posterior.from_fit(fit).take(slice(0, 20))
    h = np.array([[0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]])
    full = post.log_means(h, 1e9, 2e10)
    sub = post.select_targets(["math", "web"])
    np.testing.assert_allclose(sub.log_means(h, 1e9, 2e10), full[:, :, [3, 0]], rtol=1e-13)
    np.testing.assert_array_equal(sub.extrapolation_sd, post.extrapolation_sd[[3, 0]])


def test_bias_is_zero_inside_and_grows_outside(fit):
    post = Posterior.from_fit(fit)
    N_max, D_max = post.reach
    assert post.far(N_max / 2, D_max) == 0
    assert post.far(N_max * np.e, D_max * np.e**2) == pytest.approx(3.0)
    np.testing.assert_allclose(efolds_beyond([N_max * np.e], [D_max], N_max, D_max), [1.0])
    h = np.full((1, 4), 0.25)
    d = post.predictive(h, N_max * np.e**2, D_max, seed=4)
    ratio = np.log(d["mean"][:, 0, :]) - post.log_means(h, N_max * np.e**2, D_max)[:, 0, :]
    np.testing.assert_allclose(ratio, post.extrapolation_sd * 2 * post.bias_normals(4), rtol=1e-10, atol=1e-14)
    inside = post.predictive(h, N_max, D_max, seed=4)["mean"][:, 0, :]
    np.testing.assert_allclose(inside, post.means(h, N_max, D_max)[:, 0, :], rtol=1e-12)


def test_predictive_is_seeded_and_matches_the_fit(fit):
    h = np.full((2, 4), 0.25)
    a = fit.predict_draws(h, 2e9, 4e10, seed=7)
    b = Posterior.from_fit(fit).predictive(h, 2e9, 4e10, seed=7)
    c = Posterior.from_fit(fit).predictive(h, 2e9, 4e10, seed=8)
    np.testing.assert_array_equal(a["pred"], b["pred"])
    assert not np.allclose(b["pred"], c["pred"])


def test_point_posterior_is_one_draw(fit):
    p = {k: v[0, 0] for k, v in fit.draws.items()}
    one = Posterior.point(fit.law, fit.domains, fit.targets, p, fit.N0, fit.D0)
    h = np.full((3, 4), 0.25)
    np.testing.assert_allclose(
        one.log_means(h, 1e9, 2e10)[0], Posterior.from_fit(fit).take([0]).log_means(h, 1e9, 2e10)[0]
    )
    assert jax.numpy.isfinite(one.log_means(h, 1e9, 2e10)).all()
