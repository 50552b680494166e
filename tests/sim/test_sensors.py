"""The sensor simulator: trajectories, reproducibility, latencies, regimes and noise magnitudes."""

import math

import numpy as np
import pytest

from robots.localization.frames import Pose2
from robots.localization.measurements import (
    FloorChange,
    GnssFix,
    GnssFixType,
    Gyro,
    PoseFix,
    UwbFix,
    WheelOdometry,
)
from sim.sensors import (
    DT,
    Arrival,
    Env,
    Leg,
    Regime,
    SensorNoise,
    Trajectory,
    default_extrinsics,
    scripted_trajectory,
    simulate,
    straight,
    trajectory,
    turn,
    wait,
)


def _of(arrivals: list[Arrival], kind: type) -> list[Arrival]:
    return [a for a in arrivals if isinstance(a.meas, kind)]


def _long_run(fix: GnssFixType, seconds: float = 200.0) -> Trajectory:
    env = Env(Regime.OPEN_SKY, None, fix, lidar=True, uwb=True)
    return trajectory([wait(1.0, env), Leg(seconds, 1.0, 0.05, env)], Pose2(0.0, 0.0, 0.0))


def _gnss_errors(traj: Trajectory, arrivals: list[Arrival]) -> np.ndarray:
    lever = default_extrinsics()["gnss"]
    out = []
    for a in _of(arrivals, GnssFix):
        k = round(a.meas.stamp / DT)
        p = lever.sensor_pose(traj.pose(k))
        out.append((a.meas.east - p.x, a.meas.north - p.y))
    return np.array(out)


def test_trajectory_integrates_legs_with_limited_acceleration() -> None:
    """A straight then a left quarter turn ends near the expected point; speed ramps at ≤ 1 m/s²."""
    env = Env(Regime.OPEN_SKY)
    traj = trajectory([straight(10.0, 1.0, env), turn(math.pi / 2, 1.0, 5.0, env)], Pose2(0.0, 0.0, 0.0))
    assert np.max(np.abs(np.diff(traj.v))) <= 1.0 * DT + 1e-12
    assert traj.yaw[-1] == pytest.approx(math.pi / 2, abs=0.15)
    assert traj.x[-1] == pytest.approx(14.5, abs=0.8)
    assert traj.y[-1] == pytest.approx(5.0, abs=0.8)


def test_same_seed_same_measurements_other_seed_differs() -> None:
    """Simulation is reproducible for a seed and changes with the seed."""
    traj = scripted_trajectory()
    a, b, c = simulate(traj, 7), simulate(traj, 7), simulate(traj, 8)
    assert a == b
    assert a != c


def test_arrivals_sorted_with_configured_latencies() -> None:
    """Arrivals are in time order; GNSS arrives 200 ms and lidar 100 ms after its stamp, odometry at once."""
    arrivals = simulate(scripted_trajectory(), 0)
    times = [a.arrival for a in arrivals]
    assert times == sorted(times)
    assert {round(a.arrival - a.meas.stamp, 9) for a in _of(arrivals, GnssFix)} == {0.2}
    assert {round(a.arrival - a.meas.stamp, 9) for a in _of(arrivals, PoseFix)} == {0.1}
    assert {a.arrival - a.meas.stamp for a in _of(arrivals, WheelOdometry)} == {0.0}


def test_scripted_run_regimes_and_sources() -> None:
    """Regimes go open sky → entrance → indoor → lift → indoor; no GNSS indoors; lift exit tells floor 6."""
    traj = scripted_trajectory()
    arrivals = simulate(traj, 0)
    regimes = [a.regime for a in _of(arrivals, WheelOdometry)]
    runs = [r for i, r in enumerate(regimes) if i == 0 or r != regimes[i - 1]]
    assert runs == [Regime.OPEN_SKY, Regime.ENTRANCE, Regime.INDOOR, Regime.LIFT, Regime.INDOOR]
    gnss = _of(arrivals, GnssFix)
    assert {a.regime for a in gnss} == {Regime.OPEN_SKY, Regime.ENTRANCE}
    fixes = [a.meas.fix for a in gnss]
    assert [f for i, f in enumerate(fixes) if i == 0 or f != fixes[i - 1]] == [
        GnssFixType.FIXED,
        GnssFixType.FLOAT,
        GnssFixType.SINGLE,
    ]
    assert not _of([a for a in arrivals if a.regime is Regime.LIFT], PoseFix)
    floors = [(a.meas.floor, a.regime) for a in _of(arrivals, FloorChange)]
    assert floors == [("1", Regime.ENTRANCE), ("6", Regime.INDOOR)]
    lift = [a.meas.speed for a in _of(arrivals, WheelOdometry) if a.regime is Regime.LIFT]
    assert abs(float(np.mean(lift[100:]))) < 0.01  # stationary after braking


def test_multipath_near_entrance() -> None:
    """Some single fixes at the entrance are metres off (reflections), beyond the 2 m Gauss–Markov error."""
    traj = scripted_trajectory()
    arrivals = [a for a in simulate(traj, 0) if a.regime is Regime.ENTRANCE]
    err = np.linalg.norm(_gnss_errors(traj, arrivals), axis=1)
    single = np.array([a.meas.fix is GnssFixType.SINGLE for a in _of(arrivals, GnssFix)])
    jumps = np.abs(np.diff(err[single]))
    assert np.max(jumps) > 2.5


def test_odometry_gyro_lidar_uwb_noise_within_bounds() -> None:
    """Sample 1-σ of each sensor's error is within ±10 % of the configured noise (≥ 2000 samples)."""
    noise = SensorNoise()
    traj = _long_run(GnssFixType.FIXED)
    arrivals = simulate(traj, 3, noise)
    odo = _of(arrivals, WheelOdometry)
    k = np.array([round(a.meas.stamp / DT) for a in odo])
    moving = traj.v[k] == 1.0
    speed_err = np.array([a.meas.speed for a in odo]) - traj.v[k]
    assert np.std(speed_err[moving]) == pytest.approx(math.hypot(0.02, 0.02), rel=0.1)
    rate_err = np.array([a.meas.yaw_rate for a in odo]) - traj.w[k]
    assert np.std(rate_err) == pytest.approx(noise.wheel_yaw_rate_std, rel=0.1)
    gyro_err = np.array([a.meas.yaw_rate for a in _of(arrivals, Gyro)]) - traj.w[k]
    assert np.std(np.diff(gyro_err)) == pytest.approx(math.sqrt(2) * noise.gyro_std, rel=0.1)
    assert np.std(_gnss_errors(traj, arrivals)) == pytest.approx(noise.gnss_fixed_std, rel=0.1)
    lidar = _of(arrivals, PoseFix)
    lever = default_extrinsics()["lidar"]
    lerr = [a.meas.pose.x - lever.sensor_pose(traj.pose(round(a.meas.stamp / DT))).x for a in lidar]
    assert np.std(lerr) == pytest.approx(noise.lidar_std, rel=0.1)
    uwb = _of(arrivals, UwbFix)
    uerr = [a.meas.north - traj.y[round(a.meas.stamp / DT)] for a in uwb]
    assert np.std(uerr) == pytest.approx(noise.uwb_std, rel=0.1)


def test_gyro_bias_drifts_as_a_random_walk() -> None:
    """The gyro error's slow part (bias) moves over minutes, by the order of the configured walk."""
    noise = SensorNoise(gyro_bias_walk=1e-3)
    traj = _long_run(GnssFixType.FIXED)
    arrivals = simulate(traj, 4, noise)
    k = np.array([round(a.meas.stamp / DT) for a in _of(arrivals, Gyro)])
    err = np.array([a.meas.yaw_rate for a in _of(arrivals, Gyro)]) - traj.w[k]
    first, last = float(np.mean(err[:500])), float(np.mean(err[-500:]))
    assert 1e-4 < abs(last - first) < 5 * 1e-3 * math.sqrt(200.0)


@pytest.mark.parametrize(("fix", "std"), [(GnssFixType.FLOAT, 0.3), (GnssFixType.SINGLE, 2.0)])
def test_float_and_single_errors_are_time_correlated(fix: GnssFixType, std: float) -> None:
    """Float and single errors are Gauss–Markov: strongly correlated fix to fix, of the configured size."""
    traj = _long_run(fix, 300.0)
    err = _gnss_errors(traj, simulate(traj, 5))[:, 0]
    assert np.corrcoef(err[:-1], err[1:])[0, 1] > 0.98
    assert 0.3 * std < np.std(err) < 2.0 * std
