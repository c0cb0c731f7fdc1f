"""Sharded, resumable sampling and ensembles (expint.parallel, expint sample/fd/ensemble).

The multi-process tests launch ``torchrun`` (gloo, CPU) in a subprocess, exactly as a
user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import expint.parallel as par
from expint import problems
from expint.cli import main
from expint.diffusion import metrics
from expint.diffusion.fd import fd

pytestmark = pytest.mark.slow  # `make test-fast` skips this module; `make test` runs it

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _env(**extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{TESTS}{os.pathsep}{ROOT}", OMP_NUM_THREADS="1", **extra)
    return env


def _cli(*args: str, nproc: int = 1, env: dict | None = None) -> subprocess.CompletedProcess:
    if nproc == 1:
        cmd = [sys.executable, "-m", "expint.cli", *args]
    else:  # "--" keeps torchrun from reading expint's --n as an abbreviation of its own options
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "expint.cli",
            "--",
            *args,
        ]
    return subprocess.run(cmd, env=env or _env(), capture_output=True, text=True, timeout=300)


def _failure(run: subprocess.CompletedProcess) -> str:
    """What a failed run printed: under torchrun a rank's own error comes first and the
    launcher's summary last, so keep both ends of stderr."""
    err = run.stderr
    return err if len(err) <= 6000 else f"{err[:3000]}\n[...]\n{err[-3000:]}"


def _sample_args(out: Path, n: int = 40, batch: int = 8, nfe: int = 6, **kw: str) -> list[str]:
    args = [
        "sample",
        "--model",
        "_factories:mixture",
        "--n",
        str(n),
        "--batch",
        str(batch),
        "--nfe",
        str(nfe),
        "--method",
        kw.get("method", "dpmpp2m"),
        "--grid",
        "logsnr",
        "--seed",
        "7",
        "--out",
        str(out),
        "--quiet",
    ]
    return args


def test_two_processes_give_the_same_samples_as_one_and_as_another_batch_size(tmp_path):
    two = _cli(*_sample_args(tmp_path / "two", batch=8), nproc=2)
    assert two.returncode == 0, _failure(two)
    one = _cli(*_sample_args(tmp_path / "one", batch=13))
    assert one.returncode == 0, _failure(one)
    a, b = par.load_samples(tmp_path / "two"), par.load_samples(tmp_path / "one")
    assert a.shape == (40, 2, 3, 3)
    assert np.array_equal(a, b)
    # the samples are real samples: far from the noise they started from
    noise = par.initial_noise(par.resolve_model("_factories:mixture").schedule, 999.0, (2, 3, 3), 7, 0, 40)
    assert metrics.rmse(a, noise.numpy()) > 0.5


def test_a_killed_run_resumes_without_recomputing_finished_shards(tmp_path):
    calls = tmp_path / "calls"
    out = tmp_path / "run"
    nfe, per_shard = 6, 6  # dpmpp2m: one call per step
    args = _sample_args(out, n=40, batch=8, nfe=nfe)
    args[args.index("_factories:mixture")] = "_factories:dying"
    # one fingerprint call, two shards, then death during the third shard
    killed = _cli(*args, env=_env(EXPINT_CALLS=str(calls), EXPINT_DIE_AT=str(1 + 2 * per_shard + 3)))
    assert killed.returncode == 9
    assert sorted(p.name for p in out.glob("shard-*.npz")) == ["shard-000000.npz", "shard-000001.npz"]
    calls.write_text("")
    resumed = _cli(*args, env=_env(EXPINT_CALLS=str(calls)))
    assert resumed.returncode == 0, _failure(resumed)
    assert calls.stat().st_size == 1 + 3 * per_shard  # the fingerprint, then only the three missing shards
    assert "2 shards reused" in resumed.stdout
    full = tmp_path / "full"
    assert _cli(*_sample_args(full, n=40, batch=8, nfe=nfe)).returncode == 0
    assert np.array_equal(par.load_samples(out), par.load_samples(full))


def _counting(model):
    calls = []

    def counted(x, t):
        calls.append(x.shape[0])
        return model(x, t)

    return counted, calls


def test_a_truncated_shard_is_detected_and_recomputed(tmp_path):
    import _factories

    model, sched, pred, shape = _factories.mixture()
    counted, calls = _counting(model)
    kw = dict(n=30, batch_size=10, nfe=4, method="ddim", progress=False)
    par.sample_sharded((counted, sched, pred, shape), tmp_path, **kw)
    before = par.load_samples(tmp_path)
    shard = tmp_path / "shard-000001.npz"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"1 of 3 shards missing or damaged \(1\)"):
        par.load_samples(tmp_path)
    calls.clear()
    report = par.sample_sharded((counted, sched, pred, shape), tmp_path, **kw)
    assert (report.computed, report.skipped) == (1, 2)
    assert calls == [2] + [10] * 4  # the fingerprint call, then one shard of 4 steps
    assert np.array_equal(par.load_samples(tmp_path), before)


def test_a_changed_configuration_is_refused_naming_the_key(tmp_path):
    import _factories

    spec = _factories.mixture()
    par.sample_sharded(spec, tmp_path, n=10, batch_size=5, nfe=3, method="ddim", progress=False)
    with pytest.raises(ValueError, match=r"method: 'ddim' there, 'dpmpp2m' here"):
        par.sample_sharded(spec, tmp_path, n=10, batch_size=5, nfe=3, method="dpmpp2m", progress=False)
    with pytest.raises(ValueError, match=r"batch_size: 5 there, 4 here"):
        par.sample_sharded(spec, tmp_path, n=10, batch_size=4, nfe=3, method="ddim", progress=False)
    res = _cli(*_sample_args(tmp_path, n=10, batch=5, nfe=3))
    assert res.returncode == 2 and "nfe: 3" not in res.stderr and "different configuration" in res.stderr
    # more items under the same configuration extend the run, reusing every full shard
    report = par.sample_sharded(spec, tmp_path, n=17, batch_size=5, nfe=3, method="ddim", progress=False)
    assert (report.skipped, report.computed) == (2, 2)
    assert par.load_samples(tmp_path).shape[0] == 17


def test_a_changed_network_changes_the_fingerprint(tmp_path):
    import _factories

    model, sched, pred, shape = _factories.mixture()
    par.sample_sharded(
        (model, sched, pred, shape), tmp_path, n=4, batch_size=4, nfe=2, method="ddim", progress=False
    )
    with pytest.raises(ValueError, match="fingerprint"):
        par.sample_sharded(
            (lambda x, t: 1.01 * model(x, t), sched, pred, shape),
            tmp_path,
            n=4,
            batch_size=4,
            nfe=2,
            method="ddim",
            progress=False,
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no_such_module:f"], "cannot import 'no_such_module'"),
        (["--model", "_factories:missing"], "has no attribute 'missing'"),
        (["--model", "_factories:not_a_factory"], "is not callable"),
        (["--model", "_factories:three_things"], "must return (model, schedule, prediction, sample_shape)"),
        (["--model", "_factories:bad_prediction"], "unknown prediction type 'noise'"),
        (["--model", "digits"], "must be 'pkg.module:factory' or a shipped model"),
        (["--model", "_factories:mixture", "--n", "0"], "--n: expected a positive integer, got 0"),
        (["--model", "_factories:mixture", "--out", "/proc/no/such"], "argument --out: cannot write"),
        (["--model", "_factories:mixture", "--method", "rhork2", "--nfe", "4"], "try 3 or 5"),
        (["--model", "_factories:mixture", "--device", "cuda"], "no CUDA device"),
    ],
)
def test_bad_sample_input_is_one_line_and_status_2(tmp_path, monkeypatch, capsys, args, message):
    if "cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
    monkeypatch.syspath_prepend(str(TESTS))
    base = {"--n": "4", "--nfe": "3", "--out": str(tmp_path / "o"), "--batch": "2"}
    for k, v in zip(args[::2], args[1::2], strict=True):
        base[k] = v
    argv = ["sample", "--quiet", *[x for kv in base.items() for x in kv]]
    with pytest.raises(SystemExit) if message.startswith(("--n", "argument")) else _no_exit():
        code = main(argv)
        assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_world_size_larger_than_the_shards_is_refused(tmp_path):
    res = _cli(*_sample_args(tmp_path, n=4, batch=4), nproc=2)
    assert res.returncode != 0
    assert "world size 2 is larger than the number of shards 1" in res.stderr


def test_api_errors(tmp_path):
    import _factories

    spec = _factories.mixture()
    with pytest.raises(ValueError, match="n must be a positive integer"):
        par.sample_sharded(spec, tmp_path, n=0, batch_size=4, nfe=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        par.ShardedRun(tmp_path, 4, 0, {})
    with pytest.raises(TypeError, match=r"config\['f'\] .* cannot be stored as JSON"):
        par.ShardedRun(tmp_path, 4, 2, {"f": object()})
    run = par.ShardedRun(tmp_path / "r", 4, 2, {"a": 1})
    with pytest.raises(ValueError, match="its first axis must have 2 rows"):
        run.run(lambda a, b: {"x": np.zeros(3)}, progress=False)
    with pytest.raises(FileNotFoundError, match="not an expint run folder"):
        par.load_samples(tmp_path / "nothing")


def test_fd_orders_halves_below_a_perturbed_set_and_matches_the_gaussian_closed_form(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((4000, 4)) * [1.0, 2.0, 0.5, 1.0] + [0.0, 1.0, 0.0, -1.0]
    np.save(tmp_path / "a.npy", data[:2000])
    np.save(tmp_path / "b.npy", data[2000:])
    np.save(tmp_path / "c.npy", 1.3 * data[2000:] + 0.2)  # d² = |0.3μ + 0.2|² + Σ(0.3 s)² = 0.34 + 0.5625
    assert main(["fd", str(tmp_path / "a.npy"), "--ref", str(tmp_path / "b.npy")]) == 0
    halves = float(capsys.readouterr().out)
    assert main(["fd", str(tmp_path / "a.npy"), "--ref", str(tmp_path / "c.npy")]) == 0
    perturbed = float(capsys.readouterr().out)
    assert halves < 0.05 and 0.9 < perturbed < 1.0
    # Gaussians with diagonal covariances: d² = |μ1 − μ2|² + Σ (s1 − s2)² exactly
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])
    np.savez(tmp_path / "g1.npz", mu=mu1, sigma=np.diag(s1**2))
    np.savez(tmp_path / "g2.npz", mu=mu2, sigma=np.diag(s2**2))
    exact = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert fd(tmp_path / "g1.npz", tmp_path / "g2.npz") == pytest.approx(exact, rel=1e-12)
    big = rng.standard_normal((200_000, 3)) * s1 + mu1
    assert fd(big, tmp_path / "g2.npz", save_stats=tmp_path / "big.npz") == pytest.approx(exact, rel=0.02)
    assert fd(tmp_path / "big.npz", tmp_path / "g2.npz") == pytest.approx(exact, rel=0.02)


def test_fd_of_a_sample_folder_against_the_training_data(tmp_path, capsys):
    par.sample_sharded("digits_eps", tmp_path, n=64, batch_size=32, nfe=10, method="ddim", progress=False)
    assert main(["fd", str(tmp_path), "--ref", "data:digits"]) == 0
    value = float(capsys.readouterr().out)
    assert 0 < value < 20


def test_fd_bad_input(tmp_path, capsys):
    assert main(["fd", str(tmp_path / "missing.npy"), "--ref", "data:digits"]) == 2
    assert "does not exist" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((4, 3)))
    assert main(["fd", str(tmp_path / "x.npy"), "--ref", str(tmp_path / "x.npy"), "--features", "nope"]) == 2
    assert "features must be" in capsys.readouterr().err


def test_inception_features_without_weights_say_where_to_put_them(tmp_path, monkeypatch):
    import types

    import torch

    if "pytorch_fid" not in sys.modules:  # a stand-in package: only the weights check runs
        fake = types.ModuleType("pytorch_fid.inception")
        fake.InceptionV3 = object
        monkeypatch.setitem(sys.modules, "pytorch_fid", types.ModuleType("pytorch_fid"))
        monkeypatch.setitem(sys.modules, "pytorch_fid.inception", fake)

    from expint.diffusion.fd import feature_extractor

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"pt_inception-2015-12-05-6726825d\.pth"):
        feature_extractor("inception")


def test_ensemble_two_processes_match_one_and_the_statistics(tmp_path):
    args = [
        "ensemble",
        "kuramoto_sivashinsky",
        "--n",
        "12",
        "--perturb",
        "0.05",
        "--t-end",
        "2",
        "--stats",
        "mean,std,max",
        "--quiet",
    ]
    two = _cli(*args, "--batch", "3", "--out", str(tmp_path / "two"), nproc=2)
    assert two.returncode == 0, _failure(two)
    one = _cli(*args, "--batch", "5", "--out", str(tmp_path / "one"))
    assert one.returncode == 0, _failure(one)
    a = par.load_arrays(tmp_path / "two")["final"]
    b = par.load_arrays(tmp_path / "one")["final"]
    assert a.shape == (12, 128)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)  # batched FFTs may round differently
    assert np.ptp(a, axis=0).max() > 1e-3  # the members differ
    stats = np.load(tmp_path / "two" / "stats.npz")
    np.testing.assert_allclose(stats["mean"], a.mean(0), atol=1e-14)
    np.testing.assert_allclose(stats["std"], a.std(0, ddof=1), atol=1e-14)
    np.testing.assert_allclose(stats["max"], a.max(0))


def test_ensemble_members_follow_the_unperturbed_solution_for_zero_perturbation(tmp_path):
    import expint
    from expint import problems

    par.ensemble_sharded("burgers", tmp_path, n=3, perturb=0.0, t_end=0.5, batch_size=2, progress=False)
    final = par.load_arrays(tmp_path)["final"]
    bp = problems.burgers()
    ref = bp.to_physical(expint.solve(bp.problem, bp.y0, (0, 0.5), scheme="etdrk4", dt=bp.dt).y[-1])
    np.testing.assert_allclose(final, np.broadcast_to(ref, final.shape), atol=1e-12)


def test_ensemble_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["ensemble", "nonsense", "--n", "2", "--perturb", "0.1", "--out", str(tmp_path)])
    assert "invalid choice" in capsys.readouterr().err
    assert (
        main(["ensemble", "burgers", "--n", "2", "--perturb", "-1", "--out", str(tmp_path), "--quiet"]) == 2
    )
    assert "perturb must be a finite number ≥ 0" in capsys.readouterr().err
    assert (
        main(
            [
                "ensemble",
                "burgers",
                "--n",
                "2",
                "--perturb",
                "0.1",
                "--stats",
                "median",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 2
    )
    assert "unknown statistics ['median']" in capsys.readouterr().err


def test_an_ensemble_that_blows_up_fails_without_a_traceback(tmp_path, capsys):
    """A member that overflows is a failed run (exit 1, the message naming the members
    and the step), not a ``RuntimeError`` traceback."""
    args = [
        "ensemble",
        "ks",
        "--n",
        "2",
        "--perturb",
        "1e300",
        "--t-end",
        "1",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    with pytest.warns(RuntimeWarning):
        assert main(args) == 1
    err = capsys.readouterr().err
    assert "expint ensemble: failed: members 0–1: the state became non-finite in step 0" in err


def test_counter_normal_is_standard_normal_and_independent_of_which_rows_are_drawn():
    from scipy import stats

    keys = par.item_seed(3, np.arange(20_000))
    z = par.counter_normal(keys, 63)
    assert z.shape == (20_000, 63)
    flat = z.ravel()
    assert abs(flat.mean()) < 0.005 and abs(flat.var() - 1) < 0.01
    assert abs((flat**4).mean() - 3) < 0.05
    assert stats.kstest(flat[:200_000], "norm").pvalue > 1e-3
    assert abs(np.corrcoef(z[:, 0], z[:, 32])[0, 1]) < 0.03  # Box–Muller partners
    assert abs(np.corrcoef(z[:-1, 5], z[1:, 5])[0, 1]) < 0.03  # neighbouring items
    assert np.array_equal(par.counter_normal(keys[7:9], 63), z[7:9])
    assert not np.array_equal(par.counter_normal(par.item_seed(4, np.arange(2)), 63), z[:2])


@pytest.mark.parametrize("name", list(problems.PROBLEMS))
def test_every_builtin_problem_runs_as_an_ensemble(name, tmp_path):
    """One step of two perturbed members of each built-in problem.  The real-FFT
    problems (Gray–Scott, 2-D Allen–Cahn) failed: their perturbation was drawn with the
    state's length, half the field's, and `lift` could not reshape it."""
    bp = problems.PROBLEMS[name]()
    par.ensemble_sharded(name, tmp_path, n=2, perturb=1e-3, t_end=bp.dt, progress=False)
    final = par.load_arrays(tmp_path)["final"]
    assert final.shape[0] == 2 and np.isfinite(final).all()
    assert not np.array_equal(final[0], final[1])  # the members were perturbed differently
