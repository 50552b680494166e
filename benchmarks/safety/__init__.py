"""E-stop propagation benchmark (issue 9): console API → MQTT → agent → ROS 2 zero ``cmd_vel``."""
