"""``mtopt solve``: solve ``Gα = 1/α`` for one Gram matrix (or update matrix) from a file.

Only numpy and the chosen backend are imported: ``mtopt solve --solver newton`` imports
neither torch nor cvxpy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from mtopt.cli.app import app
from mtopt.errors import InputError

LOADABLE = (".npy", ".npz", ".csv")
#: the first bytes of each binary format (a text file named .npy is refused by name, not read
#: by numpy, whose fallback would call it "pickled data")
_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}


def _cli_message(exc: Exception, solver_flag: str = "--solver") -> InputError:
    """A library message in this command's words: ``solver:`` -> ``--solver``,
    ``solver='newton'`` -> ``--solver newton``."""
    from mtopt.cli.flags import rewrite_flags

    text = rewrite_flags(str(exc), {"solver": solver_flag, "tol": "--tol"})
    return InputError(text.replace("solver='newton'", "--solver newton"))


def load_matrix(path: str, option: str) -> Any:
    """Read one 2-D float64 array from ``.npy``, ``.npz`` (exactly one array) or ``.csv``.

    Raises :class:`InputError` naming the file and the fix."""
    import numpy as np

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in LOADABLE:
        raise InputError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; "
            f"give {option} a .npy, .npz or .csv file"
        )
    if not p.is_file():
        raise InputError(f"{path}: file not found; check the path given to {option}")
    magic = _MAGIC.get(suffix)
    if magic is not None:
        try:
            with p.open("rb") as fh:
                head = fh.read(len(magic))
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror}); check {option}") from None
        if head != magic:
            raise InputError(
                f"{path}: not a {suffix} file (it does not start with the {suffix} signature); "
                f"save the matrix with np.save / np.savez, or give {option} a .csv file"
            )
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                if len(keys) != 1:
                    raise InputError(
                        f"{path}: holds {len(keys)} arrays ({', '.join(keys) or 'none'}); "
                        "save exactly one array in the .npz"
                    )
                arr = z[keys[0]]
        else:
            arr = np.loadtxt(p, delimiter=",", dtype=np.float64, ndmin=2)
    except InputError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{path}: cannot be read as a numeric matrix ({msg}); "
            "save a 2-D float array (np.save, or comma-separated numbers without a header)"
        ) from None
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{path}: holds {arr.dtype} data, not numbers; save a 2-D float array")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(
            f"{path}: expected a 2-D matrix, got shape {arr.shape}; "
            + ("save G as n×n" if option == "--gram" else "save D as d×n (one column per task)")
        )
    return arr


def gram_from_inputs(gram: str | None, updates: str | None) -> tuple[Any, str]:
    """``(G, source file)`` from exactly one of ``--gram`` / ``--updates`` (``G = DᵀD``)."""
    import numpy as np

    if (gram is None) == (updates is None):
        raise InputError(
            "--gram/--updates: "
            + ("both given" if gram is not None else "neither given")
            + "; pass exactly one of --gram G.npy (n×n) or --updates D.npy (d×n)"
        )
    if gram is not None:
        G = load_matrix(gram, "--gram")
        if G.shape[0] != G.shape[1]:
            raise InputError(
                f"{gram}: G must be square n×n, got shape {G.shape}; "
                "pass the Gram matrix DᵀD, or the updates themselves with --updates"
            )
        if not np.all(np.isfinite(G)):
            raise InputError(f"{gram}: contains NaN or Inf; remove non-finite entries")
        return G, gram
    D = load_matrix(updates, "--updates")  # type: ignore[arg-type]
    if D.shape[0] == 0 or D.shape[1] == 0:
        raise InputError(f"{updates}: empty update matrix {D.shape}; save D as d×n")
    if not np.all(np.isfinite(D)):
        raise InputError(f"{updates}: contains NaN or Inf; remove non-finite entries")
    with np.errstate(over="ignore", invalid="ignore"):
        G = D.T @ D  # float64 accumulation
    if not np.all(np.isfinite(G)):
        raise InputError(
            f"{updates}: G = DᵀD overflows float64 (entries up to {np.abs(D).max():.3g}); "
            "divide D by a constant c (α then scales by c)"
        )
    return G, updates


def _parse_tol(tol: str) -> float:
    try:
        value = float(tol)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise InputError(f"--tol: {tol!r} is not a positive number; use e.g. --tol 1e-6")
    return value


@app.command("solve")
def solve_cmd(
    gram: str = typer.Option(None, "--gram", help="n×n Gram matrix G = DᵀD (.npy/.npz/.csv)."),
    updates: str = typer.Option(
        None, "--updates", help="d×n update matrix D, one column per task; G = DᵀD in float64."
    ),
    solver: str = typer.Option("newton", "--solver", help="Backend (see `mtopt list solvers`)."),
    tol: str = typer.Option("1e-6", "--tol", help="Residual max|α(Gα)−1| that counts as ok."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    out: str = typer.Option(None, "--out", help="Also write the JSON result here (atomic)."),
) -> None:
    """Solve PUB's balancing equation Gα = 1/α (α > 0) and print α with its certificate.

    Exit codes: 0 ok; 1 not_converged or pareto_stationary (the result is still printed);
    2 bad input (one line on stderr).
    """
    from mtopt.errors import SolverUnavailableError, UnknownNameError
    from mtopt.registry import registry
    from mtopt.solvers import Backend, solve, validate_gram

    tol_value = _parse_tol(tol)
    if out is not None:
        from mtopt.cli.outputs import check_out_file

        check_out_file(out)
    try:  # through the registry: plugin solvers included
        entry = registry.entry("solver", solver)
    except UnknownNameError as exc:
        raise InputError(f"--solver: {exc}; see `mtopt list solvers`") from None
    G, source = gram_from_inputs(gram, updates)
    validate_gram(G, name=source)  # InvalidGramError names the file
    try:
        result = solve(G, Backend.from_entry(entry), tol=tol_value)
    except SolverUnavailableError as exc:
        msg = _cli_message(exc, solver_flag=f"--solver {solver}")
        typer.echo(f"mtopt: error: {msg}", err=True)
        raise typer.Exit(1) from None
    except InputError as exc:  # e.g. closed-form with n != 2
        raise InputError(f"{source}: {_cli_message(exc)}") from None
    payload = {
        "alpha": None if result.alpha is None else [float(a) for a in result.alpha],
        "residual": result.residual,
        "status": result.status,
        "seconds": result.seconds,
        "iterations": result.iterations,
        "solver": result.solver,
    }
    if out is not None:
        from mtopt.io import atomic_write_json

        full = result.to_dict() | payload
        atomic_write_json(out, full)  # an OS error here: exit 1 (mtopt.cli.main)
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        typer.echo(f"solver      {result.solver}")
        typer.echo(f"status      {result.status}")
        res = "n/a" if result.residual is None else f"{result.residual:.3e}"
        typer.echo(f"residual    {res}")
        typer.echo(f"iterations  {result.iterations}")
        typer.echo(f"seconds     {result.seconds:.6f}")
        if result.alpha is None:
            reason = result.info.get("reason", "no solution")
            typer.echo(f"alpha       none ({reason})")
        else:
            typer.echo("alpha       " + " ".join(f"{a:.10g}" for a in result.alpha))
    if result.status != "ok":
        raise typer.Exit(1)
