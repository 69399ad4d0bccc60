"""newton vs the paper-literal CCP as the authors' code runs it: the CVXPY problem rebuilt and
compiled for every solve (no DPP cache), exponential-cone form on the raw G, cold start.

Prints the median seconds per solve of each and their ratio, measured in the same run on the
same random benign Gram matrices (G = DᵀD, D Gaussian d×n), two ways: the solver's own time as
``mtopt compare-solvers`` counts it (for the paper-literal CCP that includes the per-solve
compilation it pays), and end to end through ``mtopt.solvers.solve`` (input validation and the
recomputed certificate included). ``--out FILE.json`` writes them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from mtopt.io import atomic_write_json
from mtopt.solvers import solve
from mtopt.solvers.ccp import clear_cache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", default="3,5,10")
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for n in [int(x) for x in args.n.split(",")]:
        lit, newt, lit_e2e, newt_e2e = [], [], [], []
        for _ in range(args.instances):
            D = rng.normal(size=(200, n))
            G = D.T @ D
            clear_cache()  # the authors' code builds a new problem per solve
            t0 = time.perf_counter()
            r = solve(G, "ccp-raw", cone="exp", phase1=False)
            lit_e2e.append(time.perf_counter() - t0)
            lit.append(r.seconds + r.compile_seconds)
            t0 = time.perf_counter()
            rn = solve(G, "newton")
            newt_e2e.append(time.perf_counter() - t0)
            newt.append(rn.seconds)
            assert rn.ok
            if r.alpha is not None:
                assert np.allclose(r.alpha, rn.alpha, rtol=1e-3)
        row = {
            "n": n,
            "paper_literal_s": statistics.median(lit),
            "newton_s": statistics.median(newt),
            "paper_literal_end_to_end_s": statistics.median(lit_e2e),
            "newton_end_to_end_s": statistics.median(newt_e2e),
        }
        row["ratio"] = row["paper_literal_s"] / row["newton_s"]
        row["ratio_end_to_end"] = row["paper_literal_end_to_end_s"] / row["newton_end_to_end_s"]
        rows.append(row)
        print(
            f"n={n:3d}  paper-literal CCP {row['paper_literal_s'] * 1e3:8.2f} ms   "
            f"newton {row['newton_s'] * 1e6:8.1f} µs   ratio {row['ratio']:6.0f}x   "
            f"(end to end: {row['paper_literal_end_to_end_s'] * 1e3:.2f} ms vs "
            f"{row['newton_end_to_end_s'] * 1e6:.0f} µs, {row['ratio_end_to_end']:.0f}x)"
        )
    if args.out:
        atomic_write_json(args.out, rows)


if __name__ == "__main__":
    main()
