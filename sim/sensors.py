"""Ground-truth trajectories and a seeded sensor simulator for the localizer.

A trajectory is a sequence of ``Leg``: constant forward speed and yaw rate for a duration (a straight,
an arc or a stop), each in an ``Env`` that says the regime (open sky, entrance, indoor, lift), the
floor, the GNSS fix quality, whether multipath is present and which indoor fixes are available.
``trajectory(legs)`` integrates the legs on a 50 Hz grid; ``scripted_legs()`` is the scripted run
open sky → entrance → indoor corridor → lift (stationary, floor change) → indoor on floor 6.

``simulate(traj, seed)`` produces ``Arrival`` records (arrival time, measurement of
``robots.localization.measurements``, regime), sorted by arrival time. Noise (``SensorNoise``):

===========  =======  =========  ==================================================================
sensor       rate     latency    noise
===========  =======  =========  ==================================================================
wheel        50 Hz    0          multiplicative slip on speed + white speed and yaw-rate noise
                                 while the wheels turn; zero at a standstill (no encoder ticks)
imu (gyro)   50 Hz    0          white noise + bias random walk (initial bias drawn)
accel        50 Hz    0          forward specific force: true dv/dt + white noise + bias random walk
gnss         10 Hz    200 ms     fixed: white 2 cm; float: 30 cm, single: 2 m, both Gauss–Markov;
                                 multipath: occasional metre-level reflections; none: no message
lidar        10 Hz    100 ms     scan-match pose of the lidar, 3 cm / 0.01 rad, where ``Env.lidar``
uwb          5 Hz     0          tag position 15 cm, where ``Env.uwb``
floor        event    0          ``FloorChange`` at the first sample on a new floor (lift exit)
===========  =======  =========  ==================================================================

The same seed gives the same measurements (one ``numpy.random.Generator``). Stamps are truth times;
measurement positions are in campus ENU. The ground truth holds speed and yaw rate constant over each
20 ms sample (``Trajectory``), and the wheel, gyro and accelerometer readings stamped ``t[k]`` describe
the sample ``(t[k-1], t[k]]`` (``period`` = 20 ms), as encoders and IMUs report means over their period.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from robots.localization.frames import Extrinsics, Pose2, wrap_angle
from robots.localization.measurements import (
    Accel,
    FloorChange,
    GnssFix,
    GnssFixType,
    Gyro,
    Measurement,
    PoseFix,
    UwbFix,
    WheelOdometry,
)

Array = NDArray[np.float64]

DT = 0.02
GNSS_EVERY = 5
LIDAR_EVERY = 5
UWB_EVERY = 10


class Regime(enum.Enum):
    """Where the robot is, as far as the sensors are concerned."""

    OPEN_SKY = "open_sky"
    ENTRANCE = "entrance"
    INDOOR = "indoor"
    LIFT = "lift"


@dataclass(frozen=True, slots=True)
class Env:
    """The sensing environment of a leg."""

    regime: Regime
    floor: str | None = None
    gnss: GnssFixType = GnssFixType.NONE
    multipath: bool = False
    lidar: bool = False
    uwb: bool = False


@dataclass(frozen=True, slots=True)
class Leg:
    """Constant forward speed (m/s) and yaw rate (rad/s) for ``duration`` seconds in ``env``."""

    duration: float
    speed: float
    yaw_rate: float
    env: Env

    def __post_init__(self) -> None:
        if not self.duration > 0.0:
            raise ValueError(f"Leg.duration must be > 0, got {self.duration!r}")


def straight(length: float, speed: float, env: Env) -> Leg:
    """A straight leg of ``length`` metres at ``speed`` m/s."""
    return Leg(length / speed, speed, 0.0, env)


def turn(angle: float, speed: float, radius: float, env: Env) -> Leg:
    """An arc turning by ``angle`` rad (positive left) at ``speed`` m/s on ``radius`` m."""
    rate = math.copysign(speed / radius, angle)
    return Leg(abs(angle) / abs(rate), speed, rate, env)


def wait(duration: float, env: Env) -> Leg:
    """Standing still for ``duration`` seconds."""
    return Leg(duration, 0.0, 0.0, env)


@dataclass(frozen=True, slots=True)
class Trajectory:
    """Ground truth on a regular grid: sample ``k`` at ``t[k]``; ``v[k]``, ``w[k]`` over (t[k-1], t[k]]."""

    t: Array
    x: Array
    y: Array
    yaw: Array
    v: Array
    w: Array
    env_index: NDArray[np.int64]
    envs: tuple[Env, ...]

    def env(self, k: int) -> Env:
        """The environment of sample ``k``."""
        return self.envs[int(self.env_index[k])]

    def pose(self, k: int) -> Pose2:
        """The true robot base pose at sample ``k``."""
        return Pose2(float(self.x[k]), float(self.y[k]), float(self.yaw[k]))

    def position_at(self, stamps: Array) -> Array:
        """True (east, north) at arbitrary times, linearly interpolated: shape (n, 2)."""
        return np.column_stack([np.interp(stamps, self.t, self.x), np.interp(stamps, self.t, self.y)])


def _toward(current: float, target: float, max_step: float) -> float:
    return current + max(-max_step, min(max_step, target - current))


def trajectory(
    legs: list[Leg], start: Pose2, dt: float = DT, max_accel: float = 1.0, max_yaw_accel: float = 2.0
) -> Trajectory:
    """Integrate ``legs`` from ``start`` (at rest) on a grid of ``dt`` (each leg rounded to whole steps).

    Speed and yaw rate move toward each leg's values at most at ``max_accel`` (m/s²) and
    ``max_yaw_accel`` (rad/s²), as a real drive does, so leg lengths and turn angles are approximate.
    """
    if not legs:
        raise ValueError("trajectory needs at least one leg")
    steps = [max(1, round(leg.duration / dt)) for leg in legs]
    n = sum(steps) + 1
    t, x, y, yaw, v, w = (np.zeros(n) for _ in range(6))
    env_index = np.zeros(n, dtype=np.int64)
    x[0], y[0], yaw[0] = start.x, start.y, start.yaw
    k = 0
    for i, (leg, m) in enumerate(zip(legs, steps, strict=True)):
        for _ in range(m):
            k += 1
            v[k] = _toward(v[k - 1], leg.speed, max_accel * dt)
            w[k] = _toward(w[k - 1], leg.yaw_rate, max_yaw_accel * dt)
            phi = yaw[k - 1] + 0.5 * w[k] * dt
            x[k] = x[k - 1] + v[k] * math.cos(phi) * dt
            y[k] = y[k - 1] + v[k] * math.sin(phi) * dt
            yaw[k] = wrap_angle(yaw[k - 1] + w[k] * dt)
            t[k], env_index[k] = k * dt, i
    return Trajectory(t, x, y, yaw, v, w, env_index, tuple(leg.env for leg in legs))


def scripted_legs() -> list[Leg]:
    """Open sky → entrance (fixed → float → single with multipath → none) → corridor → lift → floor 6.

    About 160 s and 230 m, starting and ending at rest.
    """
    sky = Env(Regime.OPEN_SKY, None, GnssFixType.FIXED)
    door_float = Env(Regime.ENTRANCE, None, GnssFixType.FLOAT)
    door_single = Env(Regime.ENTRANCE, "1", GnssFixType.SINGLE, multipath=True, lidar=True)
    door_none = Env(Regime.ENTRANCE, "1", GnssFixType.NONE, lidar=True, uwb=True)
    hall = Env(Regime.INDOOR, "1", lidar=True, uwb=True)
    lift = Env(Regime.LIFT, "1")
    floor6 = Env(Regime.INDOOR, "6", lidar=True)
    return [
        wait(1.0, sky),
        straight(40.0, 1.5, sky),
        turn(math.pi / 2, 1.0, 5.0, sky),
        straight(20.0, 1.5, sky),
        straight(8.0, 1.0, door_float),
        straight(6.0, 0.8, door_single),
        straight(4.0, 0.8, door_none),
        straight(30.0, 1.0, hall),
        turn(-math.pi / 2, 0.5, 2.0, hall),
        straight(10.0, 1.0, hall),
        wait(25.0, lift),
        straight(15.0, 1.0, floor6),
        turn(math.pi / 2, 0.5, 2.0, floor6),
        straight(10.0, 1.0, floor6),
        wait(1.0, floor6),
    ]


def scripted_trajectory() -> Trajectory:
    """The scripted run of ``scripted_legs`` from the campus ENU origin, facing east."""
    return trajectory(scripted_legs(), Pose2(0.0, 0.0, 0.0))


@dataclass(frozen=True, slots=True)
class SensorNoise:
    """Noise magnitudes (1-σ) and latencies of the simulated sensors (see the module docstring)."""

    wheel_speed_std: float = 0.02
    wheel_slip_std: float = 0.02  # relative
    wheel_yaw_rate_std: float = 0.02
    wheel_standstill_std: float = 0.001  # the 1-σ the odometry reports when the encoders stand still
    gyro_std: float = 0.005
    gyro_bias_init_std: float = 0.003
    gyro_bias_walk: float = 1e-4  # rad/s/√s
    accel_std: float = 0.05
    accel_bias_init_std: float = 0.05
    accel_bias_walk: float = 1e-3  # m/s²/√s
    gnss_fixed_std: float = 0.02
    gnss_float_std: float = 0.3
    gnss_float_tau: float = 10.0
    gnss_single_std: float = 2.0
    gnss_single_tau: float = 60.0
    multipath_prob: float = 0.3
    multipath_m: tuple[float, float] = (3.0, 8.0)
    gnss_latency: float = 0.2
    lidar_std: float = 0.03
    lidar_yaw_std: float = 0.01
    lidar_latency: float = 0.1
    uwb_std: float = 0.15


def default_extrinsics() -> dict[str, Extrinsics]:
    """Where the simulated sensors sit: GNSS antenna 0.2 m behind the base, lidar 0.25 m ahead."""
    return {
        "wheel": Extrinsics(),
        "imu": Extrinsics(),
        "accel": Extrinsics(),
        "gnss": Extrinsics(-0.2, 0.0, 0.0),
        "lidar": Extrinsics(0.25, 0.0, 0.0),
        "uwb": Extrinsics(),
        "floor": Extrinsics(),
    }


@dataclass(frozen=True, slots=True)
class Arrival:
    """A measurement, when it reaches the localizer, and the regime it was taken in."""

    arrival: float
    meas: Measurement | FloorChange
    regime: Regime


@dataclass
class _GaussMarkov:
    """A 2D first-order Gauss–Markov process of unit variance and time constant ``tau``."""

    tau: float
    state: Array = field(default_factory=lambda: np.zeros(2))
    started: bool = False

    def step(self, rng: np.random.Generator, dt: float) -> Array:
        if not self.started:
            self.state, self.started = rng.normal(0.0, 1.0, 2), True
            return self.state
        a = math.exp(-dt / self.tau)
        self.state = a * self.state + math.sqrt(1.0 - a * a) * rng.normal(0.0, 1.0, 2)
        return self.state


class _Simulator:
    """The per-run state of the sensor simulation (bias, Gauss–Markov errors)."""

    def __init__(self, traj: Trajectory, noise: SensorNoise, ext: dict[str, Extrinsics], seed: int) -> None:
        self.traj, self.noise, self.ext = traj, noise, ext
        self.rng = np.random.default_rng(seed)
        self.bias = float(self.rng.normal(0.0, noise.gyro_bias_init_std))
        self.accel_bias = float(self.rng.normal(0.0, noise.accel_bias_init_std))
        self.gm_float = _GaussMarkov(noise.gnss_float_tau)
        self.gm_single = _GaussMarkov(noise.gnss_single_tau)
        self.out: list[Arrival] = []

    def run(self) -> list[Arrival]:
        for k in range(1, len(self.traj.t)):
            env = self.traj.env(k)
            self._odometry(k, env)
            if env.floor != self.traj.env(k - 1).floor:
                self.out.append(
                    Arrival(self.traj.t[k], FloorChange("floor", self.traj.t[k], env.floor), env.regime)
                )
            if k % GNSS_EVERY == 0 and env.gnss is not GnssFixType.NONE:
                self._gnss(k, env)
            if k % LIDAR_EVERY == 0 and env.lidar:
                self._lidar(k, env)
            if k % UWB_EVERY == 0 and env.uwb:
                self._uwb(k, env)
        self.out.sort(key=lambda a: a.arrival)  # stable: ties keep generation order
        return self.out

    def _odometry(self, k: int, env: Env) -> None:
        n, rng, t = self.noise, self.rng, float(self.traj.t[k])
        v, w = float(self.traj.v[k]), float(self.traj.w[k])
        if v == 0.0 and w == 0.0:  # standing: the encoders do not tick
            std = n.wheel_standstill_std
            odo = WheelOdometry("wheel", t, 0.0, 0.0, std, std, DT)
        else:
            speed = v * (1.0 + rng.normal(0.0, n.wheel_slip_std)) + rng.normal(0.0, n.wheel_speed_std)
            speed_std = math.hypot(n.wheel_speed_std, n.wheel_slip_std * v)
            rate = w + rng.normal(0.0, n.wheel_yaw_rate_std)
            odo = WheelOdometry("wheel", t, speed, rate, speed_std, n.wheel_yaw_rate_std, DT)
        self.bias += n.gyro_bias_walk * math.sqrt(DT) * float(rng.normal())
        gyro = Gyro("imu", t, w + self.bias + rng.normal(0.0, n.gyro_std), n.gyro_std, DT)
        self.accel_bias += n.accel_bias_walk * math.sqrt(DT) * float(rng.normal())
        dv = (v - float(self.traj.v[k - 1])) / DT
        accel = Accel("accel", t, dv + self.accel_bias + rng.normal(0.0, n.accel_std), n.accel_std, DT)
        self.out += [Arrival(t, odo, env.regime), Arrival(t, gyro, env.regime), Arrival(t, accel, env.regime)]

    def _sensor_point(self, k: int, source: str) -> Pose2:
        return self.ext[source].sensor_pose(self.traj.pose(k))

    def _gnss(self, k: int, env: Env) -> None:
        n, t = self.noise, float(self.traj.t[k])
        dt = GNSS_EVERY * DT
        err_float = self.gm_float.step(self.rng, dt) * n.gnss_float_std
        err_single = self.gm_single.step(self.rng, dt) * n.gnss_single_std
        if env.gnss is GnssFixType.FIXED:
            err = self.rng.normal(0.0, n.gnss_fixed_std, 2)
        elif env.gnss is GnssFixType.FLOAT:
            err = err_float
        else:
            err = err_single
        if env.multipath and self.rng.random() < n.multipath_prob:
            angle = self.rng.uniform(-math.pi, math.pi)
            err = err + self.rng.uniform(*n.multipath_m) * np.array([math.cos(angle), math.sin(angle)])
        p = self._sensor_point(k, "gnss")
        fix = GnssFix("gnss", t, p.x + float(err[0]), p.y + float(err[1]), env.gnss)
        self.out.append(Arrival(t + n.gnss_latency, fix, env.regime))

    def _lidar(self, k: int, env: Env) -> None:
        n, t, rng = self.noise, float(self.traj.t[k]), self.rng
        p = self._sensor_point(k, "lidar")
        noisy = Pose2(
            p.x + rng.normal(0.0, n.lidar_std),
            p.y + rng.normal(0.0, n.lidar_std),
            wrap_angle(p.yaw + rng.normal(0.0, n.lidar_yaw_std)),
        )
        s2, y2 = n.lidar_std**2, n.lidar_yaw_std**2
        cov = ((s2, 0.0, 0.0), (0.0, s2, 0.0), (0.0, 0.0, y2))
        self.out.append(Arrival(t + n.lidar_latency, PoseFix("lidar", t, noisy, cov), env.regime))

    def _uwb(self, k: int, env: Env) -> None:
        n, t = self.noise, float(self.traj.t[k])
        p = self._sensor_point(k, "uwb")
        e = self.rng.normal(0.0, n.uwb_std, 2)
        self.out.append(Arrival(t, UwbFix("uwb", t, p.x + e[0], p.y + e[1], n.uwb_std), env.regime))


def simulate(
    traj: Trajectory,
    seed: int,
    noise: SensorNoise | None = None,
    extrinsics: dict[str, Extrinsics] | None = None,
) -> list[Arrival]:
    """Simulate every sensor over ``traj``; the same ``seed`` gives the same arrivals."""
    ext = extrinsics if extrinsics is not None else default_extrinsics()
    return _Simulator(traj, noise or SensorNoise(), ext, seed).run()
