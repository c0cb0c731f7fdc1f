"""Schemes a user writes as data: an `ExpRKTableau` passed to `solve` as ``scheme=``,
validated when it is built (docs/solver.md, *Your own scheme*)."""

from __future__ import annotations

import numpy as np
import pytest

import expint
from expint.schemes import ExpRKTableau, PhiExpr


def phi(k, c=1.0):
    return PhiExpr({(k, c, 0.0): 1.0})


PROB = expint.SemilinearProblem(expint.Diagonal([-1.0, -50.0]), lambda t, y: np.sin(y))
Y0 = np.array([1.0, -0.5])


def etd2rk(**kw):
    args = {
        "c": (0.0, 1.0),
        "a": {(1, 0): phi(1)},
        "b": (phi(1) - phi(2), phi(2)),
        "order": 2,
        "stiff_order": 2,
    }
    return ExpRKTableau("my_etd2rk", "etdrk", **(args | kw))


def test_a_user_tableau_runs_as_the_catalogue_scheme_it_writes_out():
    """Before, ``scheme=`` took names only ("scheme must be a name such as 'etdrk4'")."""
    ours = expint.solve(PROB, Y0, (0.0, 1.0), scheme=etd2rk(), n_steps=16)
    built_in = expint.solve(PROB, Y0, (0.0, 1.0), scheme="etd2rk", n_steps=16)
    np.testing.assert_allclose(ours.y, built_in.y, rtol=1e-14)
    assert ours.scheme == "my_etd2rk"


def test_a_user_pair_takes_tolerances():
    """Krogstad's 4(3) pair rebuilt from the catalogue's own entries: the same steps."""
    k43 = expint.schemes.get("krogstad43").tableau
    mine = ExpRKTableau(
        "my_pair", "etdrk", k43.c, dict(k43.a), k43.b, k43.order, k43.stiff_order,
        b_err=k43.b_err, embedded_order=k43.embedded_order, fsal=k43.fsal,
    )  # fmt: skip
    kw = {"rtol": 1e-6, "atol": 1e-9}
    ours = expint.solve(PROB, Y0, (0.0, 2.0), scheme=mine, **kw)
    ref = expint.solve(PROB, Y0, (0.0, 2.0), scheme="krogstad43", **kw)
    assert ours.stats["steps"] == ref.stats["steps"]
    np.testing.assert_allclose(ours.y[-1], ref.y[-1], rtol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"order": 3}, ValueError, "Σ b_i c_i"),  # a claim the weights do not meet
        ({"b": (phi(1), phi(2))}, ValueError, "φ_1"),  # weights that are not consistent
        ({"a": {(0, 1): phi(1)}}, ValueError, "strictly lower triangular"),
        ({"order": 2, "stiff_order": 3}, ValueError, "stiff_order <= order"),
        ({"b": (1.0, phi(2))}, TypeError, "entries must be PhiExpr"),
        ({"b": (phi(1) - phi(2), PhiExpr({(2, 1.0, 0.0): float("nan")}))}, ValueError, "finite"),
        ({"b_err": (phi(1), phi(2))}, ValueError, "both b_err and embedded_order"),
    ],
)
def test_bad_user_tableaus_are_refused_when_built(kwargs, exc, match):
    """The first three were refused before too; the order range, entry types,
    finiteness and the embedded pair's consistency were not checked (NaN weights were
    accepted, a float entry failed inside the checks)."""
    with pytest.raises(exc, match=match):
        etd2rk(**kwargs)


def test_an_unknown_family_and_a_bad_key_are_named():
    with pytest.raises(ValueError, match="family must be 'etdrk' or 'lawson'"):
        ExpRKTableau("x", "etd", (0.0,), {}, (phi(1),), 1, 1)
    with pytest.raises(ValueError, match=r"PhiExpr keys are \(k, c, s\) triples"):
        PhiExpr({(1,): 1.0})
