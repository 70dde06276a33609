"""Progress from inside long stages: reports arrive as the work runs and change no number."""

import io

import chex
import jax
import jax.numpy as jnp
import pytest

import latentjax as lj
from latentjax.progress import stage_progress


def planted():
    generate = lambda z: jnp.tanh(z)
    classify = lambda x: jax.nn.softmax(jnp.stack([3.0 * x[:, 1], -3.0 * x[:, 1], x[:, 0]], -1))
    codes = jax.random.normal(jax.random.key(0), (3, 8, 5))
    return generate, classify, codes


def test_apcr_reports_every_chunk_up_to_the_total_with_the_same_numbers():
    generate, classify, codes = planted()
    reports = []
    quiet = lj.compute_apcr(generate, classify, codes, m=2, chunk_size=16)
    reported = lj.compute_apcr(generate, classify, codes, m=2, chunk_size=16, progress=lambda d, t: reports.append((d, t)))
    chex.assert_trees_all_equal(quiet, reported)
    total = reports[0][1]
    assert total >= 2 and [d for d, _ in reports] == list(range(1, total + 1))


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_method_b_reports_each_host_block_with_the_same_numbers():
    generate, classify, codes = planted()
    reports = []
    options = dict(steps=25, batch_size=4, loop="host")
    quiet = lj.optimize_weights(generate, classify, codes, jax.random.key(1), **options)
    reported = lj.optimize_weights(generate, classify, codes, jax.random.key(1), progress=lambda d, t: reports.append((d, t)), **options)
    chex.assert_trees_all_equal(quiet, reported)
    assert reports == [(10, 25), (20, 25), (25, 25)]


def test_stage_progress_is_silent_for_fast_work_and_periodic_for_slow_work(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("latentjax.progress.time.perf_counter", lambda: clock[0])
    lines = []
    report = stage_progress("apcr", lines.append, every_seconds=10.0)
    for done in range(1, 5):  # four chunks in 4 s: finished before the first line was due
        clock[0] += 1.0
        report(done, 4)
    assert lines == []
    report = stage_progress("apcr", lines.append, every_seconds=10.0)
    for done in range(1, 31):  # thirty chunks of 1 s each: a line every 10 s and one at the end
        clock[0] += 1.0
        report(done, 30)
    assert len(lines) == 3 and lines[-1].startswith("  [apcr] 30/30 (100%)")
    assert "ETA" in lines[0] and "10/30" in lines[0]


@pytest.mark.parametrize("loop", ["device"])
def test_method_b_on_the_device_loop_takes_no_reports(loop):
    generate, classify, codes = planted()
    reports = []
    lj.optimize_weights(generate, classify, codes, jax.random.key(1), steps=5, batch_size=4, loop=loop,
                        progress=lambda d, t: reports.append((d, t)))
    assert reports == []


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_stage_progress_draws_a_bar_on_a_terminal_and_plain_lines_elsewhere(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("latentjax.progress.time.perf_counter", lambda: clock[0])
    terminal, lines = _Terminal(), []
    report = stage_progress("apcr", lines.append, every_seconds=10.0, stream=terminal)
    for done in range(1, 31):
        clock[0] += 1.0
        report(done, 30)
    drawn = terminal.getvalue()
    assert "apcr:" in drawn and "/30 [" in drawn and "\r" in drawn  # a tqdm bar, redrawn in place
    assert lines == []  # the bar replaces the lines
    report = stage_progress("apcr", lines.append, every_seconds=10.0, stream=io.StringIO())
    for done in range(1, 31):
        clock[0] += 1.0
        report(done, 30)
    assert len(lines) == 3 and "\r" not in "".join(lines)


def test_the_bar_follows_the_reports_of_a_real_stage():
    generate, classify, codes = planted()
    terminal = _Terminal()
    lj.compute_apcr(generate, classify, codes, m=2, chunk_size=16,
                    progress=stage_progress("apcr", stream=terminal))
    assert "apcr:" in terminal.getvalue() and "/32 [" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r")  # closed: the bar is cleared when the stage ends
