"""bayesmix next-run MODEL.nc --model-size 7e9 --tokens 1.5e11 --candidates c.csv --budget-flops 3e20 --batch 4
--out plan/"""

from __future__ import annotations

from ._common import add_constraint_arguments, add_decision_arguments, constraint_kwargs, positive_float

NAME = "next-run"
HELP = "rank candidate small runs by how much their result would tell us about the decision, per FLOP; plan a batch"


def add_arguments(p):
    add_decision_arguments(p, "one target (or comma-separated: their mean) as the target loss")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--candidates",
        help="CSV of candidate runs: weight_<domain> columns, model_size, n_tokens (final), optional cost and name",
    )
    src.add_argument(
        "--propose",
        type=int,
        metavar="N",
        help=(
            "propose about N candidates: Dirichlet mixtures around the recommendation and the observed design, "
            "crossed with --sizes x --tokens-list"
        ),
    )
    p.add_argument("--sizes", help="model sizes for proposed candidates, e.g. 1.2e8,3.1e8")
    p.add_argument("--tokens-list", help="final token counts for proposed candidates, e.g. 5e9,1e10")
    p.add_argument(
        "--quantity",
        default="loss",
        choices=["loss", "optimal-loss", "regret"],
        help=(
            "Q: target loss at the recommended mixture (default), loss of the optimal mixture, or regret of the "
            "recommendation"
        ),
    )
    p.add_argument(
        "--rank-by",
        default="variance",
        choices=["variance", "decision"],
        help="rank by expected reduction of Var(Q) (default) or of the recommendation's regret (value of information)",
    )
    p.add_argument(
        "--method",
        default="gaussian",
        choices=["gaussian", "reweight"],
        help="estimator: linear-Gaussian over draws (default) or importance reweighting of the draws",
    )
    p.add_argument(
        "--budget-flops",
        type=positive_float,
        help="compute budget for the plan, in the cost column's units (FLOPs = 6 N D by default)",
    )
    p.add_argument("--batch", type=int, default=4, help="most runs in the plan (default 4)")
    p.add_argument(
        "--checkpoints", type=int, help="checkpoints a run reports, evenly spaced (default: as the fitted sweep's runs)"
    )
    p.add_argument("--draws", type=int, default=1000, help="posterior draws used (thinned evenly; default 1000)")
    p.add_argument(
        "--outcomes", type=int, default=64, help="simulated outcomes per candidate for reweighting (default 64)"
    )
    p.add_argument(
        "--check-top", type=int, default=20, help="candidates also scored by reweighting as a check (default 20)"
    )
    add_constraint_arguments(p)  # the same constraints as recommend: the plan informs that decision
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="directory for candidates.csv, plan.csv, summary.txt, scores.png, batch.png")


def run(args) -> int:
    from ..plan import next_run
    from ..plan.candidates import parse_number_list
    from ..stacking import load

    if args.propose is not None and not (args.sizes and args.tokens_list):
        raise ValueError("--propose needs --sizes and --tokens-list (e.g. --sizes 1.2e8,3.1e8 --tokens-list 5e9,1e10)")
    if args.candidates and (args.sizes or args.tokens_list):
        raise ValueError("--sizes and --tokens-list go with --propose, not --candidates")
    fit = load(args.model)
    target = [t.strip() for t in args.target.split(",")] if args.target else None
    plan = next_run(
        fit,
        args.model_size,
        args.tokens,
        candidates=args.candidates,
        propose=args.propose,
        sizes=parse_number_list(args.sizes, "--sizes") if args.sizes else None,
        tokens_list=parse_number_list(args.tokens_list, "--tokens-list") if args.tokens_list else None,
        target=target if target is None or len(target) > 1 else target[0],
        target_weights=args.target_weights,
        quantity=args.quantity,
        rank_by=args.rank_by,
        method=args.method,
        budget_flops=args.budget_flops,
        batch=args.batch,
        checkpoints=args.checkpoints,
        max_draws=args.draws,
        outcomes=args.outcomes,
        check_top=args.check_top,
        **constraint_kwargs(args),
        seed=args.seed,
    )
    print(plan.summary())
    if args.out:
        paths = plan.save(args.out)
        print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0
