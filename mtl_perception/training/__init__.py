"""The multi-task network, its losses, training loop and ONNX export. Imports torch."""
