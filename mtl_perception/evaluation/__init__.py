"""Metrics, dataset and rosbag evaluation, and benchmarks, on runtime results (ONNX or TensorRT alike)."""
