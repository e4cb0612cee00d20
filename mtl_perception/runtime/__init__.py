"""Inference without torch or ROS: what runs on the Jetson."""
