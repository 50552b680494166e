"""Fused-sensor localization: pure maths, no I/O, no wall clock (time comes with each measurement).

Modules:

- ``frames``: geodetic ↔ campus ENU (pymap3d), floor frame ↔ ENU, ``Pose2``, sensor ``Extrinsics``.
- ``state``: the 11-element state (pose, speed, yaw rate, accelerations, gyro and accelerometer biases,
  GNSS receiver error), the process models (constant acceleration; odometry as input) with exactly
  discretised noise, EKF predict/update (the docstring documents the state and noise).
- ``measurements``: wheel odometry, gyro, accelerometer (means over their sample period), GNSS (fix
  type → white noise plus a Gauss–Markov receiver error, antenna lever arm), UWB, scan-match pose fix,
  floor change; aggregation of readings.
- ``gating``: per-source chi-square gating with hysteresis and recovery after a rejection streak.
- ``fusion``: the EKF step, the fusion schedule (readings aggregated over fusion steps, PX4-style), the
  odometry-driven step and dead reckoning; ``Estimate`` and the configuration.
- ``localizer``: ``Localizer``: fusion on a delayed horizon, state history and replay of late data,
  the current (dead-reckoned) estimate.
- ``offset``: the map→odom offset, rate-limited so the published pose never jumps.
- ``smoother``: the offline RTS smoother over the same steps (the benchmark's reference).
- ``naive``: the naive baseline (late data as current, no gating).
- ``consistency``: NEES and chi-square bounds; ``health``: active sources, VDA 5050 localization score.
- ``ros_node``: the ROS 2 node (rclpy; the only module here that does I/O).
"""
