"""Fused-sensor localization: pure maths, no I/O, no wall clock (time comes with each measurement).

Modules:

- ``frames``: geodetic ↔ campus ENU (pymap3d), floor frame ↔ ENU, ``Pose2``, sensor ``Extrinsics``.
- ``state``: the 6-element state vector, the process and noise model, EKF predict/update (docstring
  documents the state and noise).
- ``measurements``: wheel odometry, gyro, GNSS (fix type → covariance, antenna lever arm), UWB,
  scan-match pose fix, floor change.
- ``gating``: per-source chi-square gating with hysteresis and recovery after a rejection streak.
- ``localizer``: ``Localizer``: time-aligned fusion with a state history and replay of late data.
- ``offset``: the map→odom offset, rate-limited so the published pose never jumps.
"""
