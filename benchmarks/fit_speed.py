"""How long a fit takes, where the time goes, and what it buys, per law, beside a baseline (issue 16).

Sweeps (``--sweep``):

- ``slimpajama`` (default): ``../shared/data/dmsl_llm_slimpajama.csv``, every run up to 1.235B
  parameters, all 8 targets, ``bayesmix.fit``'s defaults (4 chains x 1000 warm-up x 1000 draws, the
  checkpoint model, the extrapolation hold-outs);
- ``example``: the built-in simulated sweep (``bayesmix.example.example_table``), 4 targets;
- ``ye-like``: a sweep simulated in the shape of Ye et al.'s (5 domains, 4 model sizes, 26 mixtures per
  size, 14 checkpoints per run, 22 validation targets: 1,456 rows), from the additive law with
  literature-scale parameters and the checkpoint model (:func:`ye_like_table`);
- ``one-scale``: SlimPajama's one-scale mixture split (48 runs at 122M parameters and 1e10 tokens, the
  training half of ``scale_extrapolation.py``'s ``--split mixture``), 8 targets;
- ``regmix``: RegMix's 512 training runs at 1M parameters as released (``../shared/data/regmix/``:
  17 domains, about 45% of the weights exactly 0, 13 targets).

Each fit runs in a process of its own with an empty compilation cache (``BAYESMIX_JAX_CACHE`` set to a
new folder), so the figures are those of a first fit on a new machine. Printed per law: wall time, the
parts (``bayesmix.profile``: mode search, compiling, warm-up, draws, discarded tries, extrapolation
hold-outs, diagnostics), divergences, max R-hat, min bulk and tail ESS, ESS per second of the whole
fit, and per block the leapfrog steps per draw and ESS per second.

``--baseline-ref REF`` fits the same laws with the code of a git ref (checked out in a temporary
worktree; run one after the other on the same machine, since ratios hold on a noisy machine and
absolute times do not) and prints the ratio. ``--save FILE`` writes the figures as JSON;
``--baseline-file FILE`` reads a saved baseline instead of running one. ``--refit`` fits each law a second
time in a new process that finds the first one's compiled programs on disk, as a user's refit on the same
machine does, and prints its wall time beside the first (it must give the same draws).

Examples::

    python benchmarks/fit_speed.py --laws additive --baseline-ref 6a12bd3
    python benchmarks/fit_speed.py --laws additive,joint,exponential,bimix,own_weight --save speed.json
    python benchmarks/fit_speed.py --sweep example --quick          # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"
REGMIX = REPO.parent / "shared" / "data" / "regmix"
FIT_MAX_SIZE = 1.3e9  # fit on sizes up to 1.235B


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--laws", default="additive", help="comma-separated laws (default: additive)")
    p.add_argument("--sweep", choices=("slimpajama", "example", "ye-like", "one-scale", "regmix"), default="slimpajama")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-accept", type=float, default=None, help="NUTS target_accept (default: the law's)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 chains x 100 warm-up x 100 draws")
    p.add_argument("--baseline-ref", default=None, help="git ref whose code fits the same laws, for the ratio")
    p.add_argument("--baseline-file", default=None, help="a --save file of an earlier run, as the baseline")
    p.add_argument("--save", default=None, help="write this run's figures (and the baseline's) as JSON")
    p.add_argument(
        "--refit",
        action="store_true",
        help="fit each law again in a new process with the programs the first fit compiled to disk (a refit)",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one fit, JSON to stdout
    a = p.parse_args(argv)
    if a.quick:
        a.chains, a.warmup, a.draws = 2, 100, 100
    return a


# --------------------------------------------------------------------------- the fit, in its own process


def worker(a: argparse.Namespace) -> None:
    """Fit each law once and print one JSON line per law (uses only the API every version has had)."""
    import warnings

    import bayesmix
    from bayesmix.data import read_runs

    if a.sweep == "slimpajama":
        table = read_runs(DATA, quiet=True)
        table = read_runs(table.frame[table.frame.model_size < FIT_MAX_SIZE], quiet=True)
    elif a.sweep == "ye-like":
        table = read_runs(ye_like_table(seed=a.seed), quiet=True)
    elif a.sweep == "one-scale":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from scale_extrapolation import one_scale_split

        table = one_scale_split(read_runs(DATA, quiet=True))[0]
    elif a.sweep == "regmix":
        table = bayesmix.read_regmix(
            REGMIX / "train_mixture_1m.csv", REGMIX / "train_pile_loss_1m.csv", model_size=1e6, n_tokens=1e9, quiet=True
        )
    else:
        from bayesmix.example import example_table

        table = read_runs(example_table(seed=0), quiet=True)
    for law in a.laws.split(","):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bayesmix.fit(
                table,
                law,
                chains=a.chains,
                warmup=a.warmup,
                draws=a.draws,
                seed=a.seed,
                progress=False,
                **({} if a.target_accept is None else {"target_accept": a.target_accept}),
            )
        wall = time.perf_counter() - t0
        d = fit.diagnostics
        row = {
            "law": law,
            "code": str(Path(bayesmix.__file__).resolve().parents[1]),
            "wall": wall,
            "divergences": int(d.divergences),
            "max_rhat": float(d.max_rhat),
            "min_ess_bulk": float(d.min_ess_bulk),
            "min_ess_tail": float(d.min_ess_tail),
            "timing": fit.timing,
        }
        print("RESULT " + json.dumps(row, default=float), flush=True)


YE_DOMAINS = ("web", "code", "books", "papers", "wiki")
YE_SIZES = (7e7, 1.6e8, 3.05e8, 4.1e8)


def ye_like_table(seed: int = 0):
    """A simulated sweep shaped like Ye et al.'s: 5 domains x 4 sizes x 26 mixtures x 14 checkpoints, 22 targets.

    The losses come from the additive law with literature-scale parameters (as the built-in example's) and the
    checkpoint model; the 17 targets beyond the 5 domains get their own random domain weights. Every other
    mixture trains 2.5x longer, so run ends vary in tokens at every size.
    """
    import numpy as np

    from bayesmix.laws import get_law
    from bayesmix.laws.additive import from_paper_parameters
    from bayesmix.simulate import simulate_losses, sweep_design

    rng = np.random.default_rng([seed, 2024])
    targets = YE_DOMAINS + tuple(f"val{i:02d}" for i in range(17))
    K, T = len(YE_DOMAINS), len(targets)
    own = np.vstack([np.eye(K), np.zeros((T - K, K))])
    w = 0.08 + 0.6 * own + np.vstack([np.zeros((K, K)), 0.5 * rng.dirichlet(np.ones(K), T - K)])
    params = from_paper_parameters(
        E=rng.uniform(0.8, 2.2, T),
        A=np.full(T, 0.35),
        alpha=rng.uniform(0.28, 0.38, T),
        B=np.full(T, 0.30),
        beta=rng.uniform(0.24, 0.32, T),
        w=w,
        gamma=0.25 + 0.3 * own,
    )
    params.update(
        schedule=np.tile([0.03, 0.04, 0.01], (T, 1)) * rng.uniform(0.7, 1.3, (T, 1)),
        sigma=np.full(T, 0.004),
        tau_run=np.full(T, 0.003),
        kappa_run=np.full(T, 0.004),
    )
    design = sweep_design(YE_DOMAINS, YE_SIZES, mixtures_per_size=26, checkpoints=14, tokens_per_param=20, seed=seed)
    longer = design.run.str.extract(r"m(\d+)$")[0].astype(int) % 2 == 1
    design.loc[longer, "n_tokens"] *= 2.5
    return simulate_losses(get_law("additive"), design, targets, params, seed=seed + 1)


def run_fits(a: argparse.Namespace, code: Path) -> list[dict]:
    """Run the worker on the package at ``code`` in a new process with an empty compilation cache."""
    args = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--laws",
        a.laws,
        "--sweep",
        a.sweep,
        "--chains",
        str(a.chains),
        "--warmup",
        str(a.warmup),
        "--draws",
        str(a.draws),
        "--seed",
        str(a.seed),
    ] + ([] if a.target_accept is None else ["--target-accept", str(a.target_accept)])
    with tempfile.TemporaryDirectory(prefix="bayesmix-jax-cache-") as cache:
        env = dict(os.environ, PYTHONPATH=str(code), BAYESMIX_JAX_CACHE=cache, BAYESMIX_PROGRESS="0")
        rows = _fits(args, code, env)
        if a.refit:  # the same fits again, their compiled programs on disk: a user refitting on the same machine
            same = ("divergences", "max_rhat", "min_ess_bulk", "min_ess_tail")  # equal where the draws are
            for r, again in zip(rows, _fits(args, code, env), strict=True):
                if any(again[k] != r[k] for k in same):
                    raise SystemExit(f"{r['law']}: the refit did not give the first fit's draws (same seed)")
                r["refit_wall"] = again["wall"]
    return rows


def _fits(args: list[str], code: Path, env: dict) -> list[dict]:
    """The worker's fits, one JSON line per law."""
    out = subprocess.run(args, cwd=code, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the fit with the code in {code} failed:\n{out.stderr[-3000:]}")
    rows = [json.loads(line[len("RESULT ") :]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    for r in rows:
        if Path(r["code"]) != code.resolve():
            raise SystemExit(f"the fit ran the package in {r['code']}, not {code}: check the install")
    return rows


def baseline_fits(a: argparse.Namespace) -> list[dict] | None:
    if a.baseline_file:
        return json.loads(Path(a.baseline_file).read_text())["this"]
    if not a.baseline_ref:
        return None
    with tempfile.TemporaryDirectory(prefix="bayesmix-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), a.baseline_ref], check=True)
        try:
            return run_fits(a, tree)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)


# --------------------------------------------------------------------------- the tables


def parts(timing: dict) -> dict[str, float]:
    """Seconds per phase (``bayesmix.profile.phase_table``) of a fit whose code timed its parts."""
    from bayesmix.profile import phase_table

    return {k: float(v) for k, v in phase_table(timing).seconds.items()}


def summary_row(r: dict) -> dict:
    ess = min(r["min_ess_bulk"], r["min_ess_tail"])
    p = parts(r["timing"]) if "compile_seconds" in r["timing"] else {}
    return {
        "law": r["law"],
        "wall_s": r["wall"],
        "compile_s": p.get("compile"),
        "warmup_s": p.get("warmup"),
        "sampling_s": p.get("sampling"),
        "discarded_s": p.get("discarded"),
        "extrapolation_s": p.get("extrapolation"),
        "divergences": r["divergences"],
        "max_rhat": r["max_rhat"],
        "min_ess": ess,
        "ess_per_s": ess / max(r["wall"], 1e-9),
    }


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.worker:
        worker(a)
        return 0
    if a.sweep in ("slimpajama", "one-scale") and not DATA.exists():
        print(f"skipped: the SlimPajama sweep is absent ({DATA}); it lives beside the repo in ../shared/data")
        return 0
    if a.sweep == "regmix" and not (REGMIX / "train_mixture_1m.csv").exists():
        print(f"skipped: RegMix's files are absent ({REGMIX}); they live beside the repo in ../shared/data")
        return 0
    import pandas as pd

    from bayesmix.profile import block_table

    print(f"sweep {a.sweep}, laws {a.laws}, {a.chains} chains x {a.warmup} warm-up x {a.draws} draws, seed {a.seed}")
    base = baseline_fits(a)
    this = run_fits(a, REPO)
    table = pd.DataFrame([summary_row(r) for r in this]).set_index("law")
    if a.refit:
        table["refit_wall_s"] = [r.get("refit_wall", float("nan")) for r in this]
    if base:
        b = {r["law"]: r for r in base}
        table["baseline_wall_s"] = [b[law]["wall"] if law in b else float("nan") for law in table.index]
        if a.refit:
            table["baseline_refit_wall_s"] = [b.get(law, {}).get("refit_wall", float("nan")) for law in table.index]
        table["baseline_divergences"] = [b[law]["divergences"] if law in b else -1 for law in table.index]
        table["baseline_max_rhat"] = [b[law]["max_rhat"] if law in b else float("nan") for law in table.index]
        table["speed-up"] = table.baseline_wall_s / table.wall_s
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
        for r in this:
            print(f"\n{r['law']}, per block:")
            print(block_table(r["timing"]).to_string(float_format=lambda v: f"{v:.4g}"))
    if a.save:
        Path(a.save).write_text(json.dumps({"settings": vars(a), "this": this, "baseline": base}, default=float))
        print(f"saved {a.save}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
