"""The gating state machine: chi-square gate, hysteresis, recovery after a consistent rejection streak."""

import numpy as np
import pytest

from robots.localization.gating import (
    TRUSTED,
    GateConfig,
    GateDecision,
    GateMode,
    GateState,
    chi2_quantile,
    step,
)

R = np.eye(2)
CFG = GateConfig(accept_q=0.999, rejoin_q=0.95, recover_after=3)
HI = chi2_quantile(0.999, 2)  # ≈ 13.8
LO = chi2_quantile(0.95, 2)  # ≈ 5.99


def test_trusted_source_accepts_inside_gate() -> None:
    """A trusted source within the 99.9% gate is accepted and stays trusted."""
    decision, state = step(CFG, TRUSTED, HI - 0.1, 2, np.array([1.0, 1.0]), R)
    assert decision is GateDecision.ACCEPT
    assert state == TRUSTED


def test_outlier_is_rejected_and_source_becomes_suspect() -> None:
    """An innovation beyond the gate is rejected; the source becomes suspect with a streak of one."""
    decision, state = step(CFG, TRUSTED, HI + 1.0, 2, np.array([5.0, 0.0]), R)
    assert decision is GateDecision.REJECT
    assert state.mode is GateMode.SUSPECT
    assert state.streak == 1


def test_suspect_source_needs_the_stricter_gate_to_rejoin() -> None:
    """Hysteresis: a suspect source between the two gates stays rejected; below the strict gate it rejoins."""
    suspect = GateState(GateMode.SUSPECT, 1, ((5.0, 0.0),))
    decision, state = step(CFG, suspect, (LO + HI) / 2, 2, np.array([3.0, 0.0]), R)
    assert decision is GateDecision.REJECT
    assert state.streak == 2
    decision, state = step(CFG, state, LO - 0.5, 2, np.array([1.0, 0.0]), R)
    assert decision is GateDecision.ACCEPT
    assert state == TRUSTED


def test_consistent_rejection_streak_recovers() -> None:
    """Good GNSS is not locked out: after a streak of mutually consistent rejections it is recovered."""
    state = TRUSTED
    decisions = []
    for k in range(4):
        y = np.array([20.0 + 0.1 * k, -10.0])
        decision, state = step(CFG, state, 500.0, 2, y, R)
        decisions.append(decision)
    assert decisions == [GateDecision.REJECT] * 3 + [GateDecision.RECOVER]
    assert state == TRUSTED


def test_scattered_rejections_do_not_recover() -> None:
    """Multipath-like residuals that scatter far beyond the sensor noise stay rejected."""
    rng = np.random.default_rng(1)
    state = TRUSTED
    for _ in range(20):
        decision, state = step(CFG, state, 500.0, 2, rng.normal(0.0, 30.0, 2), R)
        assert decision is GateDecision.REJECT
    assert state.mode is GateMode.SUSPECT
    assert len(state.rejected) == CFG.recover_after


def test_disabled_gate_accepts_everything() -> None:
    """With gating disabled every measurement is accepted."""
    decision, state = step(GateConfig(enabled=False), TRUSTED, 1e9, 2, np.array([1e4, 0.0]), R)
    assert decision is GateDecision.ACCEPT
    assert state == TRUSTED


def test_invalid_gate_config_is_refused() -> None:
    """The rejoin gate must not be looser than the accept gate, and the streak must be positive."""
    with pytest.raises(ValueError, match="rejoin_q"):
        GateConfig(accept_q=0.95, rejoin_q=0.99)
    with pytest.raises(ValueError, match="recover_after"):
        GateConfig(recover_after=0)
