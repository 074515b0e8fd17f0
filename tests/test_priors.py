"""Priors as serialisable records."""

from __future__ import annotations

import numpy as np
import pytest

from bayesmix.priors import Prior, PriorError, coerce_prior, log_normal_around, priors_from_json, priors_to_json


def test_parse_positional_and_keywords():
    assert Prior.parse("LogNormal(-1.2, 0.3)") == Prior("LogNormal", {"loc": -1.2, "scale": 0.3})
    assert Prior.parse("HalfNormal(scale=0.05)") == Prior("HalfNormal", {"scale": 0.05})


@pytest.mark.parametrize("text", ["Foo(1)", "LogNormal(1)", "LogNormal(a, b)", "1+1", "Normal(0, inf)"])
def test_bad_priors_are_rejected_with_a_message(text):
    with pytest.raises(PriorError):
        Prior.parse(text)


def test_json_round_trip_keeps_reasons():
    pri = {"alpha": log_normal_around(0.3, 1.6, "Chinchilla"), "pi": Prior("Dirichlet", {"concentration": 1.0})}
    back = priors_from_json(priors_to_json(pri))
    assert back == pri and back["alpha"].why == "Chinchilla"


def test_log_normal_around_has_the_stated_median_and_spread():
    import jax

    d = log_normal_around(0.3, 2.0).to_numpyro(())
    x = np.asarray(d.sample(jax.random.PRNGKey(0), (20000,)))
    assert abs(np.median(x) - 0.3) < 0.01
    assert abs(np.quantile(x, 0.8413) / 0.3 - 2.0) < 0.1


def test_shapes_make_one_event():
    d = Prior("Normal", {"loc": 0.0, "scale": 1.0}).to_numpyro((3, 2))
    assert d.event_shape == (3, 2) and d.batch_shape == ()
    s = Prior("Dirichlet", {"concentration": 1.0}).to_numpyro((2, 4))
    assert s.event_shape == (2, 4)


def test_coerce_accepts_strings_and_dicts():
    assert coerce_prior("Normal(0, 1)") == Prior("Normal", {"loc": 0.0, "scale": 1.0})
    assert coerce_prior({"family": "Exponential", "params": {"rate": 2}}) == Prior("Exponential", {"rate": 2.0})
    with pytest.raises(PriorError):
        coerce_prior(3.0)
