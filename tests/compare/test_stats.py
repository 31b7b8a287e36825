"""stats: McNemar p-values against statsmodels/scipy, Holm against references, the paired bootstrap's laws."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from modelyard.compare import stats
from modelyard.errors import DataError
from modelyard.train.metrics import classification_metrics, regression_metrics

# 2x2 tables [[both right, A only], [B only, both wrong]] with known answers
TABLES = [
    [[101, 121], [59, 33]],  # Wikipedia's McNemar example (chi2 = 21.35 without correction)
    [[794, 86], [150, 570]],  # Agresti, presidential approval ratings
    [[10, 1], [7, 20]],  # Fagerland et al. (2013): exact p 0.0703, mid-p 0.0391
    [[50, 0], [0, 50]],  # no discordant pairs
    [[5, 6], [6, 5]],  # a tie
    [[0, 0], [3, 0]],
    [[1000, 40], [70, 900]],
]


@pytest.mark.parametrize("table", TABLES)
def test_mcnemar_matches_statsmodels_and_scipy(table):
    b, c = table[0][1], table[1][0]
    exact = stats.mcnemar_exact_p(b, c)
    assert exact == pytest.approx(float(sm_mcnemar(table, exact=True).pvalue), rel=1e-12, abs=1e-15)
    if b + c:
        assert exact == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-12)
        for corr in (True, False) if b != c else (False,):
            ref = sm_mcnemar(table, exact=False, correction=corr)
            stat, p = stats.mcnemar_chi2(b, c, correction=corr)
            assert stat == pytest.approx(float(ref.statistic), rel=1e-12)
            assert p == pytest.approx(float(ref.pvalue), rel=1e-12)
    if b == c:  # statsmodels squares the negative corrected difference (|0| - 1)^2; we clamp it at 0
        assert exact == 1.0 and stats.mcnemar_chi2(b, c) == (0.0, 1.0)


def test_mcnemar_known_values():
    assert stats.mcnemar_chi2(121, 59, correction=False)[0] == pytest.approx(21.3556, abs=1e-4)
    assert stats.mcnemar_exact_p(1, 7) == pytest.approx(0.0703125)
    assert stats.mcnemar_midp(1, 7) == pytest.approx(0.0390625)  # Fagerland, Lydersen & Laake (2013)
    assert stats.mcnemar_midp(6, 6) == 1.0 and stats.mcnemar_midp(0, 0) == 1.0


@given(st.integers(0, 200), st.integers(0, 200))
@settings(max_examples=60, deadline=None)
def test_mcnemar_p_values_are_ordered_and_symmetric(b, c):
    exact, mid = stats.mcnemar_exact_p(b, c), stats.mcnemar_midp(b, c)
    assert 0 <= mid <= exact <= 1
    assert exact == stats.mcnemar_exact_p(c, b) and mid == stats.mcnemar_midp(c, b)


def test_mcnemar_on_correctness_vectors():
    ca = np.array([1, 1, 0, 0, 1, 0, 1, 1], dtype=bool)
    cb = np.array([1, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    t = stats.mcnemar(ca, cb)
    assert (t.both_right, t.a_only, t.b_only, t.both_wrong) == (2, 3, 1, 2)
    assert t.p_exact == pytest.approx(float(sm_mcnemar([[2, 3], [1, 2]], exact=True).pvalue))
    with pytest.raises(DataError, match="same length"):
        stats.mcnemar(ca, cb[:-1])


def _holm_reference(p, alpha):
    """Holm's step-down procedure written out as in the 1979 paper: the set of rejected hypotheses."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    rejected = set()
    for step, i in enumerate(order):
        if p[i] < alpha / (m - step):
            rejected.add(i)
        else:
            break
    return rejected


@pytest.mark.parametrize("p", [
    [0.01, 0.04, 0.03, 0.005],
    [0.2, 0.2, 0.2],
    [0.0, 1.0, 0.5, 0.025, 0.0125],
    list(np.random.default_rng(3).uniform(0, 0.1, 9)),
])
def test_holm_matches_statsmodels(p):
    np.testing.assert_allclose(stats.holm(p), multipletests(p, method="holm")[1], rtol=1e-12, atol=1e-15)


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=12), st.sampled_from([0.01, 0.05, 0.2]))
@settings(max_examples=150, deadline=None)
def test_holm_rejects_what_the_step_down_procedure_rejects(p, alpha):
    adj = stats.holm(p)
    assert {i for i, a in enumerate(adj) if a < alpha} == _holm_reference(p, alpha)
    assert np.all(adj >= np.asarray(p) - 1e-15) and np.all(adj <= 1)


def test_holm_refuses_bad_input():
    with pytest.raises(DataError, match=r"in \[0, 1\]"):
        stats.holm([0.1, 1.5])
    with pytest.raises(DataError, match="1-D"):
        stats.holm([[0.1]])
    assert stats.holm([]).size == 0


def _replay(seed, resamples, n):
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


@given(st.integers(5, 60), st.integers(2, 4), st.integers(0, 2**31))
@settings(max_examples=40, deadline=None)
def test_bootstrap_classification_equals_the_metrics_of_each_resample(n, k, seed):
    """Every vectorized resample metric equals train.metrics computed on that resample's rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    proba = [rng.dirichlet(np.ones(k), n), rng.dirichlet(np.ones(k), n)]
    proba[0] = np.round(proba[0], 1) + 1e-3  # ties in the scores exercise the midranks of ROC-AUC
    pred = np.stack([p.argmax(axis=1) for p in proba])
    out = stats.bootstrap_classification(y, pred, proba, k, 8, np.random.default_rng(seed))
    idx = _replay(seed, 8, n)
    for r in range(8):
        rows = idx[r]
        for i in range(2):
            ref = classification_metrics(y[rows], pred[i][rows], proba[i][rows], list(range(k)))
            for name in ("accuracy", "precision", "recall", "f1", "log_loss"):
                assert out[name][i, r] == pytest.approx(ref[name], rel=1e-9, abs=1e-12), name
            if k == 2:
                if "roc_auc" in ref:
                    assert out["roc_auc"][i, r] == pytest.approx(ref["roc_auc"], rel=1e-9)
                else:
                    assert np.isnan(out["roc_auc"][i, r])
            for c in range(k):
                for name in ("precision", "recall", "f1"):
                    assert out[f"per_class.{name}"][i, r, c] == pytest.approx(ref["per_class"][str(c)][name])


@given(st.integers(3, 80), st.integers(0, 2**31))
@settings(max_examples=40, deadline=None)
def test_bootstrap_regression_equals_the_metrics_of_each_resample(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(100, 5, n)  # a large mean checks the cancellation-free R²
    pred = np.stack([y + rng.normal(0, 1, n), y + rng.normal(0, 3, n)])
    out = stats.bootstrap_regression(y, pred, 8, np.random.default_rng(seed))
    idx = _replay(seed, 8, n)
    for r in range(8):
        if np.ptp(y[idx[r]]) == 0:  # one distinct target: R² is 0 by convention, metrics' rounding differs
            assert np.all(out["r2"][:, r] == 0)
            continue
        for i in range(2):
            ref = regression_metrics(y[idx[r]], pred[i][idx[r]])
            for name in ("rmse", "mae", "r2"):
                assert out[name][i, r] == pytest.approx(ref[name], rel=1e-7, abs=1e-9), name


def test_bootstrap_is_seeded_and_handles_models_without_probabilities():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    pred = np.stack([y, 1 - y])
    proba = [np.eye(2)[y] * 0.8 + 0.1, None]
    a = stats.bootstrap_classification(y, pred, proba, 2, 1000, np.random.default_rng(7))
    b = stats.bootstrap_classification(y, pred, proba, 2, 1000, np.random.default_rng(7))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        assert a[name].shape[:2] == (2, 1000)
    assert np.isnan(a["log_loss"][1]).all() and np.isfinite(a["log_loss"][0]).all()
    assert np.all(a["accuracy"][0] == 1) and np.all(a["accuracy"][1] == 0)


@pytest.mark.parametrize("n, resamples", [(1000, 1000), (300_000, 3)])
def test_bootstrap_spans_many_blocks(n, resamples):
    """Resamples come in blocks (several per block, or one per block for huge n) and still number exactly B."""
    rng = np.random.default_rng(1)
    y = rng.normal(size=n)
    out = stats.bootstrap_regression(y, np.stack([y + 1.0, y - 2.0]), resamples, rng)
    assert out["rmse"].shape == (2, resamples)
    np.testing.assert_allclose(out["rmse"][0], 1.0)
    np.testing.assert_allclose(out["mae"][1], 2.0)


def test_paired_interval_p_value_and_degenerate_cases():
    low, high, p = stats.paired_interval(np.zeros(1000), 0.05)
    assert (low, high, p) == (0.0, 0.0, 1.0)
    d = np.linspace(0.01, 1, 1000)
    low, high, p = stats.paired_interval(d, 0.05)
    assert low > 0 and p == pytest.approx(2 / 1001)
    assert stats.paired_interval(np.r_[np.nan, d], 0.05) == (low, high, p)
    assert stats.paired_interval(np.full(5, np.nan), 0.05) == (None, None, None)


def test_bootstrap_interval_covers_the_true_difference():
    """Coverage sanity: over 150 simulated test sets the 90% interval of an accuracy difference of -0.05
    (A right w.p. 0.85, B w.p. 0.80, independently) contains the truth about 90% of the time."""
    rng = np.random.default_rng(2024)
    n, hits, reps = 300, 0, 150
    for _ in range(reps):
        y = rng.integers(0, 2, n)
        pa = np.where(rng.random(n) < 0.85, y, 1 - y)
        pb = np.where(rng.random(n) < 0.80, y, 1 - y)
        boot = stats.bootstrap_classification(y, np.stack([pa, pb]), [None, None], 2, 1000, rng)
        low, high, _ = stats.paired_interval(boot["accuracy"][1] - boot["accuracy"][0], 0.10)
        hits += low <= -0.05 <= high
    assert 0.82 <= hits / reps <= 0.97  # binomial sd of the rate is 0.025 at 150 replicates


def test_resample_blocks_refuses_nonsense():
    with pytest.raises(DataError, match="at least one row"):
        next(stats.resample_blocks(0, 10, np.random.default_rng(0)))
    with pytest.raises(DataError, match="resamples"):
        next(stats.resample_blocks(5, 0, np.random.default_rng(0)))
