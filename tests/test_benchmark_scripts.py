"""Smoke runs of benchmark scripts at tiny sizes: those a GPU session runs unattended
(`benchmarks/gpu_session.sh`), so a script that has rotted fails here, on the CPU,
instead of on a rented GPU, and `chebyshev_phiv.py`, whose "auto picks" column the
docs quote."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from _optional import needs_torch, torch

ROOT = Path(__file__).resolve().parent.parent


def _run(script: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.slow  # `make test` runs it; keeps `make test-fast` under a minute
@needs_torch
def test_gray_scott_device_runs_every_configuration_on_the_cpu():
    text = _run("gray_scott_device.py", "--n", "16", "--t-end", "1", "--steps", "2")
    import torch

    rows = [line for line in text.splitlines() if line.startswith("| fourier") or line.startswith("| fd")]
    # two variants × two configurations × backends (numpy, torch CPU, and CUDA float64
    # and float32 where a GPU is present)
    assert len(rows) == 4 * (4 if torch.cuda.is_available() else 2), text
    diffs = [float(line.rstrip(" |").split("|")[-1]) for line in rows if "float32" not in line]
    assert max(diffs) < 1e-12, text  # float64 on every backend agrees with numpy to rounding


@pytest.mark.slow
@needs_torch
def test_torch_sparse_layouts_prints_both_products():
    text = _run("torch_sparse_layouts.py", "--n", "16", "--rounds", "1")
    assert "| exp |" in text and "| phi2 |" in text and "Sparse(torch COO)" in text, text


@pytest.mark.slow
def test_chebyshev_benchmark_runs_and_auto_follows_its_rule():
    """`benchmarks/chebyshev_phiv.py` at tiny sizes: every row ran both paths, and
    "auto" picked Chebyshev exactly on the rough vectors (‖tA‖ ≈ 1 here, far from the
    cancellation that can turn a φ-combination back to Lanczos)."""
    text = _run("chebyshev_phiv.py", "--sizes", "16", "--tols", "1e-6", "--noise", "0,1", "--repeats", "1")
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| 16²")]
    assert len(rows) == 2 * 2 + 1, text  # exp and phi2 at two noise levels, plus the per-term row
    for cells in rows[:4]:
        rough, picked = float(cells[3]), cells[8].strip()
        expected = "Chebyshev" if rough >= 0.01 else "Lanczos"
        assert picked == expected, (cells, text)


@pytest.mark.slow
def test_krylov_benchmark_prints_both_expint_configurations():
    """`benchmarks/krylov_phiv.py` at a tiny size: the summary has the raw-matrix and
    `Sparse` columns and a ratio for every cell the docs quote."""
    text = _run("krylov_phiv.py", "--sizes", "16", "--tols", "1e-6,1e-10")
    summary = text.split("time to reach a relative error")[1].split("products with the operator")[0]
    rows = [line for line in summary.splitlines() if line.startswith("| 16² |")]
    assert len(rows) == 4, text  # exp and phi2 at two target errors
    assert all(float(row.split("|")[-2]) > 0 for row in rows), text
    work = text.split("per-call work on a raw matrix")[1].splitlines()
    assert any(line.startswith("| 16² |") and len(line.split("|")) == 8 for line in work), text
    alone = _run("krylov_phiv.py", "--sizes", "16", "--raw-work")
    assert "per-call work on a raw matrix" in alone and "time to reach" not in alone, alone
    # the Schrödinger operator: its own tables only, and a SciPy time in every summary row
    # even where funm_multiply_krylov does not reach the target (NaN must not win the min)
    skew = _run("krylov_phiv.py", "--sizes", "16", "--tols", "1e-6", "--operator", "schrodinger")
    assert skew.startswith("schrodinger") and "products with the operator" not in skew, skew
    rows = [line for line in skew.split("time to reach")[1].splitlines() if line.startswith("| 16² |")]
    assert len(rows) == 4 and all(float(row.split("|")[-3]) > 0 for row in rows), skew


@pytest.mark.slow
def test_rosenbrock_small_compares_the_paths_on_every_problem():
    """`benchmarks/rosenbrock_small.py --quick` at one loose tolerance: a row per
    problem and scheme, no Krylov product on the default path and some on the forced
    Krylov one (except Allen–Cahn, eigendecomposed both ways), the same steps, and final
    states that agree."""
    text = _run("rosenbrock_small.py", "--quick", "--repeats", "1", "--rtols", "1e-3")
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and "1e-03" in line]
    assert [(r[0].strip(), r[2].strip()) for r in rows] == [
        (p, s)
        for p in ("KS, 32 modes", "NLS, 32 modes", "Allen–Cahn", "convection–diffusion")
        for s in ("exprb32", "exprb43")
    ], text
    for r in rows:
        steps, products = (c.strip().split(" / ") for c in (r[7], r[8]))
        assert steps[0] == steps[1] and products[0] == "0", r
        assert (products[1] == "0") == (r[0].strip() == "Allen–Cahn"), r
        assert float(r[9]) < 1e-9, r


@pytest.mark.slow
def test_krylov_solve_overhead_runs_every_case():
    """`benchmarks/krylov_solve_overhead.py` on small grids: a row per case, with the
    products a solve made and a positive time for them alone; an unknown case is a
    usage error."""
    text = _run("krylov_solve_overhead.py", "--gs-size", "16", "--ac-size", "16", "--repeat", "1")
    rows = [
        line.split("|")[1:-1]
        for line in text.splitlines()
        if line.startswith("| gs-") or line.startswith("| ac-")
    ]
    assert [r[0].strip() for r in rows] == [
        "gs-etdab5",
        "gs-krogstad",
        "gs-krogstad-arnoldi",
        "ac-krogstad",
        "ac-etdab5",
    ], text
    assert all(int(r[2]) > 0 and float(r[3]) >= 0 for r in rows), text
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "krylov_solve_overhead.py"), "--cases", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "unknown cases" in out.stderr


@pytest.mark.slow
def test_small_stiff_system_reaches_the_reference_with_every_configuration():
    """`benchmarks/small_stiff_system.py` (Robertson) at one loose tolerance: a row per
    configuration, each successful and within 1e-3 of the tight Radau reference."""
    text = _run("small_stiff_system.py", "--rtols", "1e-4", "--repeats", "1")
    rows = [
        line.split("|")[1:-1]
        for line in text.splitlines()
        if line.startswith("| expint") or line.startswith("| scipy")
    ]
    assert [r[0].strip() for r in rows] == [
        "expint exprb32",
        "expint exprb43",
        "scipy Radau",
        "scipy BDF",
        "scipy LSODA",
    ], text
    for r in rows:
        steps, err = r[1].split("(")[1].rstrip(") ").split(", ")
        assert int(steps) > 0 and float(err) < 1e-3, r


# Scripts whose tables docs/benchmarks.md quotes and that no other test runs: each at
# its smallest size, so a script that has rotted (an internal name it reads, an option
# it passes) fails here rather than when someone next needs its numbers.
_SMOKE_RUNS = [
    pytest.param(
        ("allen_cahn_scaling.py", "--sizes", "20", "--quick", "--out", "{tmp}"),
        marks=pytest.mark.skipif(
            importlib.util.find_spec("rkstiff") is None,
            reason="needs rkstiff, a peer (the test extra installs it)",
        ),
    ),
    pytest.param(
        ("kdiffusion_mixture.py", "--batch", "16", "--steps", "10,20"),
        marks=pytest.mark.skipif(
            importlib.util.find_spec("k_diffusion") is None or torch is None,
            reason="needs torch and k-diffusion, a peer (make test installs it)",
        ),
    ),
    ("dense_batch_steps.py", "--n", "40", "--batch", "4", "--repeat", "1"),
    ("dense_queries.py", "--n", "40", "--queries", "5", "--repeat", "1"),
    ("eigenbasis_threshold.py", "--sizes", "20,40", "--repeat", "1"),
    ("gray_scott_dop853.py", "--n", "16", "--rtols", "1e-4"),
    ("lanczos_basis_limit.py", "--rounds", "1"),
    pytest.param(
        ("ks_batch_device.py", "--batch", "2", "--n", "32", "--t-end", "1", "--h", "0.25"), marks=needs_torch
    ),
    pytest.param(
        ("sharded_throughput.py", "--n", "8", "--batch", "4", "--nfe", "3", "--procs", "1"), marks=needs_torch
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("command", _SMOKE_RUNS, ids=lambda c: c[0])
def test_benchmark_script_prints_its_table(command, tmp_path):
    script, *args = command
    text = _run(script, *(a.format(tmp=tmp_path) for a in args))
    lines = text.splitlines()
    rule = next((i for i, line in enumerate(lines) if line.startswith("|---")), None)
    assert rule is not None and lines[rule + 1].startswith("| "), text
