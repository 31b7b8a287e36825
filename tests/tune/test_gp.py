"""GP core: kernel and likelihood gradients, posterior against dense algebra, log-EI, optimizer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from scipy.stats import norm

from modelyard.tune.gp.acquisition import log_ei, log_h, ucb
from modelyard.tune.gp.kernel import kernel, kernel_and_g
from modelyard.tune.gp.optimize import Layout, maximize, snap, sobol_points
from modelyard.tune.gp.regressor import GaussianProcess, Hypers, cholesky, neg_log_posterior, warp_outputs

KERNELS = ["matern52", "rbf"]


def _data(n=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    y = np.sin(6 * X[:, 0]) + X[:, 1] ** 2 + 0.05 * rng.normal(size=n)
    return X, (y - y.mean()) / y.std(), rng


@pytest.mark.parametrize("name", KERNELS)
def test_kernel_gradients_match_finite_differences(name):
    rng = np.random.default_rng(1)
    X1, X2 = rng.random((4, 3)), rng.random((5, 3))
    ell, s2, eps = np.array([0.3, 0.7, 1.5]), 1.3, 1e-6
    K, G = kernel_and_g(name, X1, X2, ell, s2)
    D = ((X1[:, None, :] - X2[None, :, :]) / ell) ** 2
    for j in range(3):
        e = np.zeros(3)
        e[j] = eps
        fd_ell = (kernel(name, X1, X2, ell * np.exp(e), s2) - K) / eps
        np.testing.assert_allclose(fd_ell, G * D[:, :, j], atol=1e-5)
        fd_x = (kernel(name, X1 + e, X2, ell, s2) - K) / eps
        np.testing.assert_allclose(fd_x, -G * (X1[:, None, j] - X2[None, :, j]) / ell[j] ** 2, atol=1e-5)


@pytest.mark.parametrize("name", KERNELS)
def test_log_posterior_gradient_matches_finite_differences(name):
    X, y, _rng = _data()
    theta = np.array([-1.0, -0.3, 0.4, 0.2, -3.0])
    g = neg_log_posterior(theta, X, y, name)[1]
    fd = optimize.approx_fprime(theta, lambda t: neg_log_posterior(t, X, y, name)[0], 1e-6)
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", KERNELS)
def test_posterior_matches_dense_computation(name):
    X, y, rng = _data()
    gp = GaussianProcess(name).fit(X, y, rng)
    h = gp.hypers_
    Xq = rng.random((6, 3))
    K = kernel(name, X, X, h.ell, h.s2) + h.noise * np.eye(len(X))
    Kq = kernel(name, Xq, X, h.ell, h.s2)
    mean = Kq @ np.linalg.solve(K, y)
    cov = kernel(name, Xq, Xq, h.ell, h.s2) - Kq @ np.linalg.solve(K, Kq.T)
    m, v = gp.predict(Xq)
    np.testing.assert_allclose(m, mean, atol=1e-8)
    np.testing.assert_allclose(v, np.diag(cov), atol=1e-8)


@pytest.mark.parametrize("name", KERNELS)
def test_posterior_gradients_match_finite_differences(name):
    X, y, rng = _data()
    gp = GaussianProcess(name).fit(X, y, rng)
    Xq = rng.random((5, 3))
    m, v, dm, dv = gp.predict(Xq, grad=True)
    val, ga = log_ei(m, v, y.min(), dm, dv)
    eps = 1e-6
    for j in range(3):
        e = np.zeros(3)
        e[j] = eps
        m2, v2 = gp.predict(Xq + e)
        np.testing.assert_allclose((m2 - m) / eps, dm[:, j], atol=1e-4)
        np.testing.assert_allclose((v2 - v) / eps, dv[:, j], atol=1e-4)
        np.testing.assert_allclose((log_ei(m2, v2, y.min()) - val) / eps, ga[:, j], rtol=1e-3, atol=1e-3)


def test_fit_learns_relevant_lengthscales_and_small_noise():
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = np.sin(8 * X[:, 0])  # only column 0 matters
    gp = GaussianProcess().fit(X, (y - y.mean()) / y.std(), rng)
    assert gp.hypers_.ell[0] < gp.hypers_.ell[1] and gp.hypers_.ell[0] < gp.hypers_.ell[2]
    assert gp.hypers_.noise < 1e-2


def test_fit_falls_back_to_prior_mode_on_garbage():
    X = np.zeros((5, 2))
    y = np.array([np.nan, 1, 2, 3, 4])
    gp = GaussianProcess().fit(X, y, np.random.default_rng(0))
    np.testing.assert_allclose(gp.hypers_.theta(), Hypers.default(2).theta())


def test_cholesky_escalates_jitter_on_singular_matrix():
    K = np.ones((4, 4))
    L = cholesky(K)
    assert np.all(np.isfinite(L)) and np.allclose(L @ L.T, K, atol=1e-6)


def test_duplicate_inputs_do_not_break_the_fit():
    X = np.repeat(np.random.default_rng(0).random((4, 2)), 3, axis=0)
    y = np.repeat([0.0, 1.0, -1.0, 0.5], 3)
    gp = GaussianProcess().fit(X, y, np.random.default_rng(0))
    assert np.all(np.isfinite(gp.predict(X)[0]))


def test_log_h_matches_naive_where_representable_and_stays_finite_far_below():
    z = np.linspace(-20, 5, 301)
    naive = np.log(norm.pdf(z) + z * norm.cdf(z))
    ok = np.isfinite(naive) & (naive > -600)
    np.testing.assert_allclose(log_h(z[ok]), naive[ok], rtol=1e-7, atol=1e-9)
    far = np.array([-1e10, -1e8, -1e4, -200.0, -40.0, -39.0, -5.0, -1.0, -0.999])
    lh = log_h(far)
    assert np.all(np.isfinite(lh)) and np.all(np.diff(lh) > 0)
    # asymptote: log h(z) ~ -z^2/2 - log(2 pi)/2 - 2 log|z|
    assert log_h(np.array([-40.0]))[0] == pytest.approx(
        -800 - 0.5 * np.log(2 * np.pi) - 2 * np.log(40), abs=1e-2
    )


def test_log_ei_is_finite_and_monotone_far_below_the_incumbent():
    mean = np.linspace(1.0, 80.0, 50)  # best = 0: z from -1 to -80
    v = log_ei(mean, np.ones(50), 0.0)
    assert np.all(np.isfinite(v)) and np.all(np.diff(v) < 0)
    ei = norm.pdf(-1.0) - 1.0 * norm.cdf(-1.0)
    assert v[0] == pytest.approx(np.log(ei))


def test_ucb_prefers_low_mean_and_high_variance():
    assert ucb(np.array([0.0]), np.array([1.0]))[0] > ucb(np.array([0.5]), np.array([1.0]))[0]
    assert ucb(np.array([0.0]), np.array([2.0]))[0] > ucb(np.array([0.0]), np.array([1.0]))[0]


def test_warp_outputs_is_monotone_and_standardized():
    y = np.array([1e-3, 1e-2, 0.5, 3.0, 1e3, 1e5])
    for method in ("none", "log", "yeo-johnson", "auto"):
        z = warp_outputs(y, method)
        assert np.all(np.diff(z) > 0)
        assert z.mean() == pytest.approx(0, abs=1e-9) and z.std() == pytest.approx(1)


def test_maximize_finds_the_optimum_of_a_mixed_function():
    # columns: 0 float, 1 int with 5 values, 2 int with 40 values (relaxed), 3-5 one-hot
    grid5 = (np.arange(5) + 0.5) / 5
    grid40 = (np.arange(40) + 0.5) / 40
    layout = Layout(6, floats=(0,), ints=((1, grid5), (2, grid40)), groups=(np.array([3, 4, 5]),))
    target = np.array([0.37, grid5[3], grid40[11], 0.0, 1.0, 0.0])

    def acq(X, grad=False):
        val = -((X - target) ** 2).sum(1)
        return (val, -2 * (X - target)) if grad else val

    X, _v = maximize(acq, layout, np.random.default_rng(0))
    np.testing.assert_allclose(X[0], target, atol=1e-4)
    assert np.all(snap(X, layout) == X)


def test_sobol_points_are_valid():
    layout = Layout(4, floats=(0,), ints=((1, np.array([0.25, 0.75])),), groups=(np.array([2, 3]),))
    X = sobol_points(layout, 64, np.random.default_rng(0))
    assert np.all(snap(X, layout) == X) and set(X[:, 1]) == {0.25, 0.75}


@settings(max_examples=100, deadline=None)
@given(st.floats(-1e6, 30.0), st.floats(1e-6, 10.0))
def test_log_h_is_finite_and_increasing_everywhere(z, dz):
    a, b = log_h(np.array([z, z + dz]))
    assert np.isfinite(a) and np.isfinite(b) and b > a


def test_warp_selection_prefers_the_warp_for_outputs_spanning_decades():
    from modelyard.tune.gp.regressor import fit_with_warp_selection

    rng = np.random.default_rng(0)
    X = rng.random((30, 2))
    smooth = np.sin(3 * X[:, 0]) + X[:, 1]
    _, z = fit_with_warp_selection(X, smooth, "matern52", rng)
    np.testing.assert_allclose(z, (smooth - smooth.mean()) / smooth.std())  # nothing to gain
    wide = np.exp(8 * smooth)
    _, zw = fit_with_warp_selection(X, wide, "matern52", rng)
    assert not np.allclose(zw, (wide - wide.mean()) / wide.std())
