"""ONNX Runtime: TensorRT EP, then CUDA EP, then CPU EP, whichever this install has."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mtl_perception.runtime.backends.base import BackendOptions, ModelLoadError
from mtl_perception.runtime.contract import (
    BATCH_DIM,
    INPUT_NAME,
    OUTPUT_NAMES,
    ModelInfo,
    check_io,
    static_batch,
)

PROVIDER_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
log = logging.getLogger(__name__)


def session_options_for(options: BackendOptions) -> Any:
    """ONNX Runtime's session options as the backend runs a model: also what `bench --peer` gives a peer's
    file, so that both are timed alike."""
    import onnxruntime as ort

    session_options = ort.SessionOptions()
    if options.threads > 0:
        session_options.intra_op_num_threads = options.threads
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Pool threads spin between the operators of a run (fast) but not after it: a node at camera
    # rate would otherwise hold both cores of a small machine while DDS and the nodes downstream
    # wait for one. Measured here: 1.5 ms less from camera to detections, inference unchanged.
    session_options.add_session_config_entry("session.force_spinning_stop", "1")
    if options.max_batch == 1:
        # One frame at a time (one camera, the tools): a dynamic-batch file pinned to batch 1, which ONNX
        # Runtime then plans as a static graph. Measured on the bundled model at 384x640 here: 48 ms
        # dynamic, 43-45 ms pinned or exported static (docs/benchmarks.md). A file without the named
        # dimension ignores this.
        session_options.add_free_dimension_override_by_name(BATCH_DIM, 1)
    return session_options


class OnnxRuntimeBackend:
    def __init__(self, model_path: Path, options: BackendOptions) -> None:
        import onnxruntime as ort

        session_options = session_options_for(options)
        available = ort.get_available_providers()
        providers = [p for p in PROVIDER_PREFERENCE if p in available]
        try:
            self.session = ort.InferenceSession(str(model_path), session_options, providers=providers)
        except Exception as err:
            raise ModelLoadError(f"model {model_path} could not be loaded by ONNX Runtime ({err}); the file is "
                                 "corrupt or not an ONNX model: re-export it with `mtl-perception export`") from err
        self.info = ModelInfo.from_metadata(self.session.get_modelmeta().custom_metadata_map, str(model_path))
        check_io({i.name: (i.type, i.shape) for i in self.session.get_inputs()},
                 {o.name: (o.type, o.shape) for o in self.session.get_outputs()}, self.info, str(model_path))
        # a static batch (contract 1's 1, a number exported so, or the pin above) runs that many frames at a
        # time; a dynamic one any number
        self.static_batch = static_batch(self.session.get_inputs()[0].shape)
        self.max_batch = self.static_batch
        self.provider = self.session.get_providers()[0]
        self.name = f"onnxruntime ({self.provider})"
        log.info("loaded %s with %s", model_path, self.name)

    def close(self) -> None:
        """Nothing to release by hand: the session frees its memory with the object."""

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
        return dict(zip(OUTPUT_NAMES, outputs))
