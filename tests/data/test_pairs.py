"""Sweeps as their authors ship them: rounded weights, RegMix pairs from Python and the command line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmix import RunTableError, read_regmix, read_runs
from bayesmix.cli import main

REGMIX = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "regmix"
K = 17


def rounded_frame(last_row_sum: float, decimals: int) -> pd.DataFrame:
    """Three runs over 17 domains written to ``decimals`` places; the last row sums to ``last_row_sum``."""
    rng = np.random.default_rng(0)
    rows = []
    for total in (1.0, 1.0, last_row_sum):
        w = np.round(rng.dirichlet(np.ones(K)), decimals)
        w[0] += round(total - w.sum(), decimals)  # this row's sum, exactly as written
        rows.append(w)
    df = pd.DataFrame(rows, columns=[f"weight_d{k}" for k in range(K)]).round(decimals)
    return df.assign(model_size=1e6, n_tokens=1e9, d0_loss=[3.0, 3.1, 3.2])


def write(tmp_path: Path, df: pd.DataFrame, name: str = "runs.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


class TestRoundingBound:
    # 17 weights to 3 decimals may be off by 17 x 0.0005 = 0.0085; to 2 decimals by 0.085, capped at 0.05.
    @pytest.mark.parametrize(
        ("decimals", "inside", "outside", "why"),
        [
            (3, 1.008, 1.009, "0.0085: 17 weights to 3 decimals"),
            (2, 0.96, 0.94, "0.05: 17 weights to 2 decimals, capped"),
        ],
    )
    def test_accepted_just_inside_refused_just_outside(self, tmp_path, decimals, inside, outside, why):
        t = read_runs(write(tmp_path, rounded_frame(inside, decimals)), quiet=True)
        np.testing.assert_allclose(t.weights.sum(axis=1), 1.0, atol=1e-12)
        note = next(n for n in t.notes if n.startswith("renormalised"))
        assert note == f"renormalised 1 row whose weights summed to {inside:g}, not 1 (tolerance {why}; row 3)"
        with pytest.raises(RunTableError) as exc:
            read_runs(write(tmp_path, rounded_frame(outside, decimals)))
        assert str(exc.value) == (
            f"{tmp_path / 'runs.csv'}, row 3 (line 4), columns 'weight_d0'..'weight_d16': weights sum to "
            f"{outside:g}, not 1 (tolerance {why}); "
            "pass weight_tolerance (--weight-tolerance) to accept larger gaps"
        )

    def test_full_precision_keeps_the_old_tolerance(self):
        df = rounded_frame(1.0, 3).astype({f"weight_d{k}": float for k in range(K)})
        df.loc[2, "weight_d0"] += 0.0011 + 1e-9  # 0.0011 with 13 decimals: no rounding excuse, tolerance 0.001
        with pytest.raises(RunTableError, match=r"row 3, .*not 1 \(tolerance 0\.001\)"):
            read_runs(df)

    def test_explicit_tolerance_wins(self, tmp_path):
        path = write(tmp_path, rounded_frame(1.009, 3))
        t = read_runs(path, weight_tolerance=0.01, quiet=True)
        assert any("(tolerance 0.01; row 3)" in n for n in t.notes)
        with pytest.raises(RunTableError, match=r"not 1 \(tolerance 0\)"):
            read_runs(write(tmp_path, rounded_frame(1.001, 3)), weight_tolerance=0)
        with pytest.raises(RunTableError, match="weight_tolerance must be None or a finite number >= 0"):
            read_runs(path, weight_tolerance=float("nan"))

    def test_cli_flag(self, tmp_path, capsys):
        path = write(tmp_path, rounded_frame(1.009, 3))
        out = tmp_path / "canonical.csv"
        assert main(["convert", str(path), "--out", str(out)]) == 2
        assert "weights sum to 1.009" in capsys.readouterr().err and not out.exists()
        assert main(["convert", str(path), "--weight-tolerance", "0.01", "--out", str(out)]) == 0
        np.testing.assert_allclose(read_runs(out).weights.sum(axis=1), 1.0, atol=1e-12)


def pair(tmp_path: Path, name: str, index=(1, 2, 3), loss_index=None, targets=("a", "b")):
    mix = pd.DataFrame(
        {"index": list(index), "train_a": [0.25, 0.5, 0.75][: len(index)], "train_b": [0.75, 0.5, 0.25][: len(index)]}
    )
    loss_index = index if loss_index is None else loss_index
    loss = pd.DataFrame(
        {"index": list(loss_index), **{f"metric/{t}_val_loss": [3.0, 3.1, 3.2][: len(loss_index)] for t in targets}}
    )
    m, lo = tmp_path / f"{name}_mixture.csv", tmp_path / f"{name}_loss.csv"
    mix.to_csv(m, index=False)
    loss.to_csv(lo, index=False)
    return m, lo


class TestPairsFromTheCommandLine:
    def test_convert_several_pairs(self, tmp_path, capsys):
        m1, l1 = pair(tmp_path, "small")
        m2, l2 = pair(tmp_path, "big", targets=("a",))
        out = tmp_path / "runs.csv"
        argv = ["convert", "--mixtures", str(m1), "--losses", str(l1), "--mixtures", str(m2), "--losses", str(l2)]
        argv += ["--model-size", "1e6", "--model-size", "6e7", "--tokens", "1e9", "--out", str(out)]
        assert main(argv) == 0
        assert "6 rows, 6 runs, 2 domains, 2 targets" in capsys.readouterr().out
        t = read_runs(out, quiet=True)
        assert t.run.tolist() == [f"{s}_mixture:{i}" for s in ("small", "big") for i in (1, 2, 3)]
        assert t.model_size.tolist() == [1e6] * 3 + [6e7] * 3
        assert np.isnan(t.losses[3:, 1]).all() and not np.isnan(t.losses[:3]).any()  # big lacks target b

        # the same table from Python
        t2 = read_regmix([m1, m2], [l1, l2], model_size=[1e6, 6e7], n_tokens=1e9, quiet=True)
        assert any("has no metric/b_val_loss: masked for its 3 runs" in n for n in t2.notes)
        pd.testing.assert_frame_equal(t2.to_frame(), t.to_frame(), check_dtype=False)

    @pytest.mark.parametrize(
        ("make", "message"),
        [
            # an index in the losses file and not in the mixtures file
            (
                lambda p: pair(p, "x", index=(1, 2), loss_index=(1, 2, 7)),
                r"x_loss\.csv, row 3 \(line 4\), column 'index': index '7' has no row in .*x_mixture\.csv",
            ),
            # a duplicated index
            (
                lambda p: pair(p, "x", index=(1, 2, 2)),
                r"x_mixture\.csv, row 3 \(line 4\), column 'index': index '2' repeats row 2",
            ),
        ],
    )
    def test_pair_errors_name_file_row_and_column(self, tmp_path, capsys, make, message):
        m, lo = make(tmp_path)
        argv = ["fit", "--mixtures", str(m), "--losses", str(lo), "--model-size", "1e6", "--tokens", "1e9"]
        assert main(argv) == 2
        assert re.search(message, capsys.readouterr().err)

    def test_target_column_without_numbers(self, tmp_path, capsys):
        m, lo = pair(tmp_path, "x")
        df = pd.read_csv(lo)
        df["metric/b_val_loss"] = ""
        df.to_csv(lo, index=False)
        argv = ["convert", "--mixtures", str(m), "--losses", str(lo), "--model-size", "1e6", "--tokens", "1e9"]
        assert main([*argv, "--out", str(tmp_path / "o.csv")]) == 2
        err = capsys.readouterr().err
        assert "x_loss.csv" in err and "column 'metric/b_val_loss': no finite loss in any of its 3 rows" in err
        df["metric/b_val_loss"] = ["3.0", "n/a?", "3.1"]
        df.to_csv(lo, index=False)
        assert main([*argv, "--out", str(tmp_path / "o.csv")]) == 2
        err = capsys.readouterr().err
        assert "index '2'" in err and "x_loss.csv row 2 (line 3)" in err
        assert "column 'metric/b_val_loss': 'n/a?' is not a number" in err

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ([], "--model-size is required with --mixtures/--losses"),
            (["--model-size", "1e6", "--model-size", "2e6", "--model-size", "3e6", "--tokens", "1"], "3 --model-size"),
            (["--model-size", "1e6", "--tokens", "1e9", "RUNS"], "either the run table"),
        ],
    )
    def test_flag_errors(self, tmp_path, capsys, extra, message):
        m, lo = pair(tmp_path, "x")
        extra = [str(m) if e == "RUNS" else e for e in extra]
        argv = ["convert", "--mixtures", str(m), "--losses", str(lo), *extra, "--out", str(tmp_path / "o.csv")]
        assert main(argv) == 2
        assert message in capsys.readouterr().err

    def test_domains_must_match_across_pairs(self, tmp_path):
        m1, l1 = pair(tmp_path, "one")
        m2, l2 = pair(tmp_path, "two")
        pd.read_csv(m2).rename(columns={"train_b": "train_c"}).to_csv(m2, index=False)
        with pytest.raises(RunTableError, match=r"two_mixture\.csv.*domains differ.*lacks 'train_b'.*has 'train_c'"):
            read_regmix([m1, m2], [l1, l2], model_size=[1e6, 6e7], n_tokens=1e9)


@pytest.fixture(scope="module")
def regmix_dir() -> Path:
    if not (REGMIX / "train_mixture_1m.csv").exists():
        pytest.skip(f"real data not available: {REGMIX} is absent (it lives beside the repo, in ../shared/data)")
    return REGMIX


class TestRegMixAsShipped:
    def test_all_six_files_from_python(self, regmix_dir):
        d = regmix_dir
        train = read_regmix(
            d / "train_mixture_1m.csv", d / "train_pile_loss_1m.csv", model_size=1e6, n_tokens=1e9, quiet=True
        )
        assert (train.n_runs, len(train.domains), len(train.targets)) == (512, 17, 13)
        note = next(n for n in train.notes if n.startswith("renormalised"))
        # 303 rows do not sum to 1 exactly; 195 of them by more than the old fixed 0.001
        assert note.startswith("renormalised 303 rows whose weights summed to 0.996 to 1.003, not 1 ")
        assert "(tolerance 0.0085: 17 weights to 3 decimals;" in note
        assert (train.weights == 0).mean() > 0.4  # many exact zeros, kept as zeros
        test = read_regmix(
            [d / "test_mixture_1m.csv", d / "test_mixture_60m.csv"],
            [d / "test_pile_loss_1m.csv", d / "test_pile_loss_60m.csv"],
            model_size=[1e6, 6e7],
            n_tokens=1e9,
            quiet=True,
        )
        assert test.n_runs == 512 and test.n_mixtures == 256  # the same 256 mixtures at two sizes
        assert sorted(set(test.model_size)) == [1e6, 6e7]

    def test_from_the_command_line(self, regmix_dir, tmp_path, capsys):
        d = regmix_dir
        out = tmp_path / "train.csv"
        argv = ["convert", "--mixtures", str(d / "train_mixture_1m.csv"), "--losses", str(d / "train_pile_loss_1m.csv")]
        assert main([*argv, "--model-size", "1e6", "--tokens", "1e9", "--out", str(out)]) == 0
        assert "512 rows, 512 runs, 17 domains, 13 targets" in capsys.readouterr().out
        assert read_runs(out, quiet=True).n_runs == 512
