"""Choices of the network's heads that the command-line parsers offer: kept free of torch, so that building a
parser (--help included) imports none of it."""

from __future__ import annotations

# where the segmentation heads stop decoding: "stride2", the default (a stage at stride 2), or "stride4" (the
# classifier on the fused stride-4 features, one final resize: the bundled model's)
SEG_HEADS = ("stride2", "stride4")
