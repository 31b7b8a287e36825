"""Data-parallel training through real worker processes (gloo on CPU): equivalence, rate, failures, checkpoints.

Each launch starts N Python processes that import torch (~2-4 s on a busy 2-core machine), so
the tests below share what they can; everything a launch does not need is tested in-process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

import modelyard as my
from modelyard.errors import DistributedError, ParamError, TrainingError
from modelyard.train.distributed import DistEnv, threads_per_process
from modelyard.train.launch import launch

HERE = Path(__file__).parent


def blobs(n=480, d=4, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32) * np.arange(1, d + 1) + 3.0  # unscaled: standardization matters
    w = rng.normal(size=(d, classes))
    y = np.argmax(X @ w + rng.gumbel(size=(n, classes)), axis=1)
    return my.from_arrays(X, y)


def assert_same_state(a, b, rtol=1e-5, atol=1e-6):
    sa, sb = a.model.state(), b.model.state()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], rtol=rtol, atol=atol, err_msg=k)


def _workers_of_this_process() -> list[int]:
    """Live processes started by a launcher in this test process (found by their MODELYARD_PARENT_PID)."""
    mine = f"MODELYARD_PARENT_PID={os.getpid()}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes()
            state = (d / "stat").read_text().split()[2]
        except OSError:
            continue
        if mine in env.split(b"\0") and state != "Z":
            found.append(int(d.name))
    return found


# --- equivalence (Theorem 4.1.5) ---------------------------------------------------------------------------------


def test_two_ranks_with_sync_gradients_equal_one_process_including_validation_and_early_stopping():
    ds = blobs()
    kw = {"params": {"optimizer": "sgd", "learning_rate": 0.3, "batch_size": 24, "momentum": 0.5},
              "epochs": 12, "patience": 2, "seed": 5}
    one = my.train(ds, **kw)
    two = my.train(ds, nodes=2, **kw)
    assert_same_state(one, two)
    assert [h.epoch for h in two.history] == [h.epoch for h in one.history]
    np.testing.assert_allclose([h.train_loss for h in two.history], [h.train_loss for h in one.history], rtol=1e-5)
    np.testing.assert_allclose([h.val_loss for h in two.history], [h.val_loss for h in one.history], rtol=1e-5)
    assert (two.best_epoch, two.stop_reason) == (one.best_epoch, one.stop_reason)
    assert two.split == one.split and two.fingerprint == one.fingerprint
    for k in ("accuracy", "f1", "log_loss"):
        assert two.metrics[k] == pytest.approx(one.metrics[k], rel=1e-5)
    info = two.extra["distributed"]
    assert info["nodes"] == 2 and info["backend"] == "gloo" and info["threads_per_process"] >= 1
    assert sum(info["rows_per_rank"]) == one.split["train"]


def test_three_uneven_ranks_with_adam_mlp_and_a_regression_target_equal_one_process():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(301, 3)).astype(np.float32) * 4 + 1
    ds = my.from_arrays(X, X @ np.array([1.0, -2.0, 0.5]) + np.sin(X[:, 0]) + 10.0)  # 301 rows: uneven shards
    kw = {"model": "mlp", "params": {"hidden_sizes": "8", "batch_size": 32, "learning_rate": 0.01}, "epochs": 6, "seed": 2}
    one = my.train(ds, **kw)
    three = my.train(ds, nodes=3, **kw)
    assert_same_state(one, three, rtol=1e-4, atol=1e-5)  # Adam divides by sqrt(v): a little more rounding
    assert three.metrics["rmse"] == pytest.approx(one.metrics["rmse"], rel=1e-4)
    assert len(set(three.extra["distributed"]["rows_per_rank"])) > 1


# --- the exact solvers: the ⊕ is a plain sum, so ranks take the steps one process takes ------------------------------


def test_exact_solvers_on_uneven_ranks_converge_to_the_coefficients_of_one_process():
    ds = blobs(n=601, classes=3, seed=6)  # 601 rows: uneven shards
    kw = {"params": {"tol": 1e-9, "ftol": 0.0}, "seed": 1}
    one = my.train(ds, **kw)
    three = my.train(ds, nodes=3, **kw)
    for k in ("module.weight", "module.bias"):
        a, b = one.model.state()[k].astype(np.float64), three.model.state()[k].astype(np.float64)
        assert np.max(np.abs(a - b)) <= 1e-6 * np.max(np.abs(a)), k
    assert three.params["solver"] == "lbfgs" and three.extra["distributed"]["aggregate"] == "loss_gradient_sum"
    assert three.stop_reason == one.stop_reason == "converged"
    assert three.history[-1].val_loss == pytest.approx(one.history[-1].val_loss, rel=1e-6)
    assert three.metrics["log_loss"] == pytest.approx(one.metrics["log_loss"], rel=1e-6)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 4)).astype(np.float32) * [1, 10, 100, 0.1] + 50
    reg = my.from_arrays(X, X @ np.array([1.0, 0.2, -0.01, 3.0]) + rng.normal(size=500))
    one = my.train(reg, model="linear_regression", seed=0)
    two = my.train(reg, model="linear_regression", nodes=2, seed=0)
    for k in ("module.weight", "module.bias", "scaling.mean", "scaling.y"):
        np.testing.assert_allclose(two.model.state()[k], one.model.state()[k], rtol=1e-6, atol=1e-9, err_msg=k)
    assert two.stop_reason == "solved" and two.extra["distributed"]["aggregate"] == "gram_sum"


@pytest.mark.parametrize("mode, message", [
    ("hang", r"rank 1 made no progress for .* it is hung"),
    ("exit", r"rank 1 died with exit code 9 without reporting an error"),
])
def test_a_hung_or_dead_rank_fails_an_exact_solver_in_bounded_time(monkeypatch, mode, message):
    monkeypatch.syspath_prepend(str(HERE))
    t0 = time.monotonic()
    with pytest.raises(DistributedError, match=message):
        launch("dist_helpers:exact_fault", {"mode": mode, "fail_rank": 1, "after": 3, "timeout": 4}, nodes=2, timeout=4)
    assert time.monotonic() - t0 < 45  # start-up (~2 x 4 s here) + 4 s timeout + reports
    assert _workers_of_this_process() == []


# --- local SGD, forests, callbacks -------------------------------------------------------------------------------


def test_parameter_averaging_trains_and_a_callback_on_rank_0_stops_every_rank():
    ds = blobs(seed=3)
    seen = []

    def stop_at_4(log):
        seen.append(log.epoch)
        return log.epoch >= 4

    params = {"solver": "adam", "batch_size": 16, "learning_rate": 0.05}
    res = my.train(ds, params=params, nodes=2, aggregate="average", sync_every=4, epochs=20, seed=1,
                   callbacks=[stop_at_4])
    assert seen == [1, 2, 3, 4] and len(res.history) == 4 and res.stop_reason == "callback"
    assert res.history[-1].train_loss < res.history[0].train_loss
    one = my.train(ds, params=params, epochs=4, seed=1)
    assert res.metrics["accuracy"] > one.metrics["accuracy"] - 0.05  # local SGD is close to, not equal to, sync SGD
    assert res.extra["distributed"]["aggregate"] == "average" and res.extra["distributed"]["sync_every"] == 4


def test_random_forest_ranks_grow_proportional_sub_forests_and_the_union_has_every_tree():
    ds = blobs(n=600, seed=4)
    res = my.train(ds, model="random_forest", params={"n_estimators": 9, "max_depth": 6}, nodes=2, seed=0)
    assert len(res.model.state()["tree.node_count"]) == 9
    assert res.extra["distributed"]["aggregate"] == "tree_union"
    one = my.train(ds, model="random_forest", params={"n_estimators": 9, "max_depth": 6}, seed=0)
    assert res.metrics["accuracy"] > one.metrics["accuracy"] - 0.06


# --- convergence (Theorem 4.1.1) --------------------------------------------------------------------------------


def _logistic_problem(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    p = 1 / (1 + np.exp(-(X @ np.array([1.5, -2.0, 0.5]) + 0.3)))
    return X, (rng.uniform(size=n) < p).astype(np.float32)


def _objective(theta, X, y, mu):
    z = X @ theta[:-1] + theta[-1]
    return np.mean(np.logaddexp(0, z) - y * z) + mu / 2 * theta @ theta  # torch's weight decay covers the bias too


def _gradient(theta, X, y, mu):
    z = X @ theta[:-1] + theta[-1]
    r = 1 / (1 + np.exp(-z)) - y
    return np.concatenate([X.T @ r / len(y), [r.mean()]]) + mu * theta


def test_distributed_sgd_with_eta_1_over_mu_t_converges_at_least_as_fast_as_1_over_T(tmp_path, monkeypatch):
    X, y = _logistic_problem()
    mu, batch, epochs = 0.5, 8, 30
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    monkeypatch.syspath_prepend(str(HERE))
    launch("dist_helpers:convergence", {"X": str(tmp_path / "X.npy"), "y": str(tmp_path / "y.npy"), "mu": mu,
                                        "batch_size": batch, "epochs": epochs, "seed": 0,
                                        "out": str(tmp_path / "thetas.safetensors")}, nodes=2, timeout=60)
    from safetensors.numpy import load_file

    thetas = load_file(str(tmp_path / "thetas.safetensors"))["thetas"]
    Xd = X.astype(np.float64)
    best = scipy.optimize.minimize(_objective, np.zeros(4), args=(Xd, y, mu), jac=_gradient, method="L-BFGS-B",
                                   options={"gtol": 1e-13, "ftol": 1e-16, "maxiter": 10_000})
    assert np.linalg.norm(_gradient(best.x, Xd, y, mu)) < 1e-8  # theta* is tight
    T = (len(X) // batch) * np.arange(1, epochs + 1)
    sub = np.array([_objective(t, Xd, y, mu) for t in thetas]) - best.fun
    assert np.all(sub > -1e-9)
    slope = np.polyfit(np.log(T[1:]), np.log(np.maximum(sub[1:], 1e-16)), 1)[0]
    assert slope < -0.9, f"log suboptimality falls with slope {slope:.2f} in log T; O(1/T) needs <= -1"
    assert np.max((T * sub)[epochs // 2 :]) <= (T * sub)[1]  # T * (L - L*) stays bounded: O(1/T)


# --- failures --------------------------------------------------------------------------------------------------


def test_a_crashing_rank_fails_the_run_with_its_rank_and_message_and_leaves_no_process(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    t0 = time.monotonic()
    with pytest.raises(DistributedError, match=r"rank 1 failed with ValueError: injected failure in forward call 4"):
        my.train(blobs(), model="dist_helpers:faulty", params={"mode": "crash", "fail_rank": 1, "after": 3},
                 nodes=2, epochs=5, dist_timeout=60)
    assert time.monotonic() - t0 < 45
    assert _workers_of_this_process() == []


def test_a_hung_rank_fails_the_run_within_the_timeout_naming_it(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    t0 = time.monotonic()
    with pytest.raises(DistributedError, match=r"rank 0 made no progress for .* it is hung") as e:
        my.train(blobs(), model="dist_helpers:faulty", params={"mode": "hang", "fail_rank": 0, "after": 5},
                 nodes=2, epochs=5, dist_timeout=4)
    assert "nothing was registered" in str(e.value)
    assert time.monotonic() - t0 < 40  # start-up (~2 x 4 s here) + 4 s timeout + reports
    assert _workers_of_this_process() == []


def test_a_suspended_rank_is_named_by_its_missing_heartbeat_within_the_timeout(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(HERE))
    stamp = tmp_path / "stopped-at"
    monkeypatch.setenv("MODELYARD_TEST_STOP_STAMP", str(stamp))
    with pytest.raises(DistributedError) as e:  # rank 1 is SIGSTOPped: it cannot report anything itself
        my.train(blobs(), model="dist_helpers:faulty", params={"mode": "stop", "fail_rank": 1, "after": 3},
                 nodes=2, epochs=5, dist_timeout=4)
    detected = time.time() - float(stamp.read_text())
    msg = str(e.value)
    assert msg.startswith("rank 1 stopped responding (no heartbeat for "), msg
    assert "nothing was registered" in msg and "gloo" not in msg and ".cc:" not in msg
    assert detected < 4 + 15  # the timeout plus the heartbeat interval and polling; generous for a loaded machine
    assert _workers_of_this_process() == []


def test_gloo_source_locations_are_not_shown():
    from modelyard.train.distributed import _first_line

    e = RuntimeError("[../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 11000ms for "
                     "recv operation to complete\nException raised from recvFromPeer at ../torch/csrc/x.cpp:1")
    assert _first_line(e) == "Timed out waiting 11000ms for recv operation to complete"


def test_a_rank_killed_by_a_signal_is_named(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    with pytest.raises(DistributedError, match=r"rank 1 died with exit code 9 without reporting an error"):
        my.train(blobs(), model="dist_helpers:faulty", params={"mode": "exit", "fail_rank": 1, "after": 2},
                 nodes=2, epochs=3, dist_timeout=60)
    assert _workers_of_this_process() == []


# --- checkpoints -----------------------------------------------------------------------------------------------


class Interrupt(Exception):
    pass


def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path):
    ds = blobs(seed=7)
    kw = {"params": {"optimizer": "adam", "batch_size": 20, "learning_rate": 0.02, "lr_schedule": "inverse_time",
                      "lr_decay": 1.0}, "epochs": 6, "seed": 3}
    whole = my.train(ds, **kw)  # one process: sync-gradient ranks give the same result

    def interrupt_after_4(log):
        if log.epoch == 5:
            raise Interrupt("power cut")

    ckpt = tmp_path / "ckpt"
    with pytest.raises(Interrupt):
        my.train(ds, nodes=2, checkpoint_every=2, checkpoint_dir=ckpt, callbacks=[interrupt_after_4], **kw)
    assert (ckpt / "LATEST").read_text() == "epoch-000004"
    assert sorted(p.name for p in ckpt.glob("epoch-*")) == ["epoch-000002", "epoch-000004"]
    assert _workers_of_this_process() == []
    resumed = my.train(ds, nodes=2, checkpoint_every=2, checkpoint_dir=ckpt, resume=True, **kw)
    assert resumed.extra["distributed"]["resumed_from_epoch"] == 4
    assert [h.epoch for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert_same_state(whole, resumed)
    np.testing.assert_allclose([h.val_loss for h in resumed.history], [h.val_loss for h in whole.history], rtol=1e-5)


def test_single_process_checkpoints_resume_bit_for_bit_and_refuse_other_settings_or_corruption(tmp_path):
    ds = blobs(seed=8)
    kw = {"model": "mlp", "params": {"hidden_sizes": "6", "dropout": 0.2, "batch_size": 32}, "epochs": 5, "seed": 4}
    whole = my.train(ds, checkpoint_every=1, checkpoint_dir=tmp_path / "a", **kw)
    my.train(ds, checkpoint_every=3, checkpoint_dir=tmp_path / "b", **{**kw, "epochs": 5, "callbacks": []})
    # resuming from epoch 3 repeats epochs 4-5 exactly, dropout masks included (the RNG state is in the checkpoint)
    resumed = my.train(ds, checkpoint_every=3, checkpoint_dir=tmp_path / "b", resume=True, **kw)
    assert resumed.extra["distributed"]["resumed_from_epoch"] == 3
    for k, v in whole.model.state().items():
        np.testing.assert_array_equal(v, resumed.model.state()[k])
    with pytest.raises(TrainingError, match=r"different settings \(fit: .*seed"):
        my.train(ds, checkpoint_dir=tmp_path / "b", resume=True, **{**kw, "seed": 5})
    with pytest.raises(TrainingError, match="found no checkpoint"):
        my.train(ds, checkpoint_dir=tmp_path / "empty", resume=True, **kw)
    latest = tmp_path / "b" / "epoch-000003" / "rank-0.safetensors"
    raw = bytearray(latest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the weights
    latest.write_bytes(bytes(raw))
    with pytest.raises(TrainingError, match="does not match its sha256"):
        my.train(ds, checkpoint_dir=tmp_path / "b", resume=True, **kw)
    with pytest.raises(ParamError, match="checkpointing needs a folder"):
        my.train(ds, checkpoint_every=2, **kw)


# --- options and environment (no processes) ----------------------------------------------------------------------


def test_bad_options_get_one_clear_sentence():
    ds = blobs()
    with pytest.raises(ParamError, match="nodes must be an int >= 1, got 0"):
        my.train(ds, nodes=0)
    with pytest.raises(ParamError, match="aggregate must be one of gradient, average, got 'mean'"):
        my.train(ds, nodes=2, aggregate="mean")
    with pytest.raises(ParamError, match="sync_every must be an int >= 1"):
        my.train(ds, nodes=2, aggregate="average", sync_every=0)
    with pytest.raises(ParamError, match="random_forest trains in one pass"):
        my.train(ds, model="random_forest", checkpoint_every=1, checkpoint_dir="x")
    with pytest.raises(ParamError, match="solver=auto runs an exact solver, which finishes in a few passes and keeps "
                                         "no checkpoints; drop --checkpoint-every/--resume, or train with --set solver=adam"):
        my.train(ds, model="logistic_regression", checkpoint_every=1, checkpoint_dir="x")
    with pytest.raises(ParamError, match="n_estimators=1 is fewer than the 2 ranks"):
        my.train(ds, model="random_forest", params={"n_estimators": 1}, nodes=2)


def test_threads_per_process_never_oversubscribes():
    assert threads_per_process(2, cores=2) == 1
    assert threads_per_process(3, cores=2) == 1
    assert threads_per_process(2, cores=16) == 8
    assert threads_per_process(1, 2, cores=2) == 2
    with pytest.raises(ParamError, match=r"2 processes x 2 threads = 4 threads on 2 cores would oversubscribe"):
        threads_per_process(2, 2, cores=2)


def test_rank_and_world_come_from_the_torchrun_environment(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    assert DistEnv.from_env() == DistEnv()
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.7")
    monkeypatch.setenv("MASTER_PORT", "29400")
    assert DistEnv.from_env() == DistEnv(5, 8, 1, 4, "10.0.0.7", 29400)
    monkeypatch.setenv("RANK", "8")
    with pytest.raises(DistributedError, match=r"RANK=8 is not in \[0, WORLD_SIZE=8\)"):
        DistEnv.from_env()
