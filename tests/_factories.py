"""Model factories for the sharded-sampling tests (``tests._factories:NAME`` with the
tests folder on the path)."""

from __future__ import annotations

import os

from expint.diffusion import DiscreteVP, toy


def _mixture():
    sched = DiscreteVP.from_betas("linear", 1e-4, 0.02, 1000)
    return toy.GaussianMixture.random(sched, shape=(2, 3, 3), components=3, seed=1), sched


def mixture():
    model, sched = _mixture()
    return model, sched, "eps", (2, 3, 3)


def dying():
    """Counts its calls in the file named by EXPINT_CALLS; the process dies hard
    (``os._exit``) on call number EXPINT_DIE_AT, as a killed node would."""
    model, sched = _mixture()
    calls_file = os.environ["EXPINT_CALLS"]
    die_at = int(os.environ.get("EXPINT_DIE_AT", "0"))

    def counted(x, t):
        with open(calls_file, "a") as f:
            f.write("x")
        if die_at and os.path.getsize(calls_file) == die_at:
            os._exit(9)
        return model(x, t)

    return counted, sched, "eps", (2, 3, 3)


def three_things():
    model, sched = _mixture()
    return model, sched, "eps"


def bad_prediction():
    model, sched = _mixture()
    return model, sched, "noise", (2, 3, 3)


not_a_factory = 5
