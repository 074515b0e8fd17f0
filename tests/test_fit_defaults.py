"""fit() takes its NUTS target acceptance from the law unless told, and records what it used."""

from __future__ import annotations

import bayesmix
from bayesmix.laws import get_law


def test_target_accept_defaults_to_the_laws(example_frame, monkeypatch):
    monkeypatch.setattr(type(get_law("own_weight")), "target_accept", 0.97)
    target = [c for c in example_frame.columns if c.endswith("_loss")][0][: -len("_loss")]
    fit = bayesmix.fit(
        example_frame,
        "own_weight",
        targets=[target],
        chains=1,
        warmup=30,
        draws=20,
        seed=0,
        progress=False,
        extrapolation_sd=0.01,
    )
    assert fit.config.target_accept == 0.97


def test_the_capacity_laws_ask_for_smaller_steps():
    # Measured on the one-scale SlimPajama split (capacity docstring): at 0.9 one of five seeds diverged.
    assert get_law("capacity").target_accept == get_law("capacity_tokens").target_accept == 0.95
    assert get_law("additive").target_accept == 0.9
