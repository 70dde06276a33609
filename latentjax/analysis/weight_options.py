"""The settings of :func:`latentjax.optimize_weights`, each checked before any work starts."""

from latentjax.analysis import validation
from latentjax.analysis.objective import PENALTIES

SCHEDULES = ("constant", "cosine")
SOLVERS = ("lbfgs", "adam")


def check_options(
    codes, *, steps, batch_size, xi_nodes, learning_rate, lam, smoothing, xi_range, penalty,
    schedule, solver, optimizer, snapshot_steps, parametrization, loop, init,
) -> None:
    """Every bad setting of :func:`optimize_weights`, named before any work starts."""
    validation.check_codes(codes, ndim=3)
    validation.check_positive(steps, "steps", integer=True)
    validation.check_non_negative(batch_size, "batch_size", integer=True)
    validation.check_non_negative(xi_nodes, "xi_nodes", integer=True)
    validation.check_positive(learning_rate, "learning_rate")
    validation.check_non_negative(lam, "lam")
    validation.check_non_negative(smoothing, "smoothing")
    xi_min, xi_max = xi_range
    low = validation.scalar_value(xi_min, "xi_min")
    high = validation.scalar_value(xi_max, "xi_max")
    if low is not None and high is not None and not 0 < low <= high:
        raise ValueError(f"xi_range={xi_range!r}: expected 0 < xi_min <= xi_max.")
    if penalty not in PENALTIES:
        raise ValueError(f"penalty={penalty!r}: expected one of {PENALTIES}.")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r}: expected one of {SCHEDULES}.")
    if solver not in SOLVERS:
        raise ValueError(f"solver={solver!r}: expected one of {SOLVERS}.")
    if solver == "lbfgs" and (batch_size != 0 or xi_nodes == 0 or optimizer is not None):
        raise ValueError(
            f"solver='lbfgs' with batch_size={batch_size!r}, xi_nodes={xi_nodes!r}"
            f"{', optimizer' if optimizer is not None else ''}: L-BFGS's line search needs the "
            "deterministic loss, expected batch_size=0, xi_nodes > 0 and no optimizer "
            "(or solver='adam')."
        )
    if solver == "adam" and optimizer is not None and schedule != "constant":
        raise ValueError(
            f"schedule={schedule!r} with your own optimizer: expected schedule='constant' "
            "(give the optimiser its own schedule, e.g. optax.cosine_decay_schedule)."
        )
    for t in snapshot_steps:
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= steps:
            raise ValueError(
                f"snapshot_steps={snapshot_steps!r}: expected integers in 1..steps={steps}."
            )
    if snapshot_steps and solver == "adam" and schedule != "constant":
        raise ValueError(
            f"snapshot_steps={snapshot_steps!r} with schedule={schedule!r}: expected "
            "schedule='constant' (a decaying schedule's step t is not a run of t steps)."
        )
    if parametrization not in ("box", "tanh"):
        raise ValueError(f"parametrization={parametrization!r}: expected 'box' or 'tanh'.")
    if loop not in ("auto", "device", "host"):
        raise ValueError(f"loop={loop!r}: expected 'auto', 'device' or 'host'.")
    start = validation.scalar_value(init, "init")
    if start is not None and not (
        -1.0 <= start <= 1.0 if parametrization == "box" else -1.0 < start < 1.0
    ):
        raise ValueError(
            f"init={init!r}: expected a value in [-1, 1] ('box') or in (-1, 1) ('tanh')."
        )
