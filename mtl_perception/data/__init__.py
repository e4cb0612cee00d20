"""BDD100K's on-disk layout and label encodings, and the synthetic scene generator (numpy, OpenCV)."""
