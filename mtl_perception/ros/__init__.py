"""Thin ROS 2 glue: message conversion and the perception node."""
