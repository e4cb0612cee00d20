"""perception_node: camera images in; detections, drivable and lane masks out, and the ground outputs.

A managed (lifecycle) node: configure reads the parameters and loads the model (or builds the TensorRT
engine), activate subscribes and starts inferring, deactivate stops, cleanup lets the model go. With
`autostart` (the default) it configures and activates itself, so `ros2 run` and the launch file just work.

Glue around the frame pipeline (runtime/pipeline.py, which knows nothing of ROS): camera_input.CameraInput
(the subscriptions and their QoS matching), frame_worker.FrameWorker (latest frame wins: a slow model never
queues stale frames), image_outputs.ImageOutputs and ground_outputs.GroundOutputs (what is published),
node_diagnostics (/diagnostics). A frame enters the pipeline once and its results are published.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from mtl_perception.ros.camera_input import CameraInput
from mtl_perception.ros.conversions import encoded_image, label_info_msg
from mtl_perception.ros.frame_worker import Arrival, FrameWorker
from mtl_perception.ros.ground_outputs import GroundOutputs, SurroundGrid
from mtl_perception.ros.image_outputs import OUTPUT_QOS, ImageOutputs
from mtl_perception.ros.log_bridge import OncePerCause, bridge_package_logging, unbridge_package_logging
from mtl_perception.ros.node_diagnostics import diagnostic_status
from mtl_perception.ros.node_parts import Camera, Configured
from mtl_perception.ros.parameters import (
    LIVE,
    PARAMETERS,
    NodeSettings,
    load_defaults,
    parameter_values,
    read_only_refusal,
    settings_from,
    unknown_parameter_warnings,
    updated_settings,
)
from mtl_perception.runtime.backends import ModelLoadError
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.ground import CameraPose
from mtl_perception.runtime.perception import Perception
from mtl_perception.runtime.pipeline import CameraFrame, FramePipeline, FrameResult
from mtl_perception.runtime.realtime import RollingStats
from mtl_perception.stamps import to_ns

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class PerceptionNode(LifecycleNode):
    """Its parts are made in on_configure and released in on_cleanup, as the ros2/demos lifecycle talker
    makes its publisher. While unconfigured it holds none of them, and every parameter may be set."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("perception_node", **kwargs)
        self._log_bridge = bridge_package_logging(self.get_logger())  # the runtime's and TensorRT's messages
        defaults = load_defaults()
        for name, spec in PARAMETERS.items():  # one without a default (camera_pose) is declared by its type
            self.declare_parameter(name, defaults[name] if spec.unset_type is None else Parameter.Type[spec.unset_type],
                                   spec.descriptor())
        self.add_on_set_parameters_callback(self._on_set_parameters)
        try:
            warnings = unknown_parameter_warnings(self, sys.argv)
        except Exception as err:  # noqa: BLE001 - a check of the command line must never stop the node
            warnings = [f"the command line's parameters were not checked for misspelt names ({type(err).__name__}: "
                        f"{err})"]
        for warning in warnings:
            self.get_logger().warning(warning)
        self._log_once_per_cause = OncePerCause(self.get_logger(), self.context.ok)  # bad and failed frames
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.stats = RollingStats()  # every count the node keeps, in one place
        self.parts: Configured | None = None  # while configured

    @property
    def autostart(self) -> bool:
        return bool(self.get_parameter("autostart").value)

    # lifecycle -------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            settings = settings_from(parameter_values(self))
            perception = Perception(settings.perception)
        except (ModelLoadError, ModelContractError, ValueError) as err:
            self.get_logger().error(f"cannot configure: {err}")
            return FAILURE
        except Exception as err:  # noqa: BLE001 - rclpy's lifecycle wrapper would swallow it without a word
            self.get_logger().error(f"cannot configure: unexpected {type(err).__name__}: {err}")
            return FAILURE
        info = perception.info
        self.get_logger().info(f"model {settings.perception.model_path} ({info.backbone}, {info.input_height}x"
                               f"{info.input_width}, trained on {info.trained_on}) on {perception.backend.name}")
        self.parts = Configured(
            settings=settings,
            pipeline=FramePipeline(perception, settings.grid, settings.tracking, settings.max_image_pixels),
            cameras={name: self._camera(name, pose, settings)
                     for name, pose in zip(settings.cameras, settings.camera_poses)},
            surround=SurroundGrid(self, OUTPUT_QOS, settings.target_frame, settings.grid)
            if settings.named_cameras else None,
            worker=FrameWorker(self._process, self._frame_failed),
            diagnostics_timer=self.create_timer(settings.diagnostics_period, self._publish_diagnostics))
        if settings.named_cameras:
            self.get_logger().info(f"{len(settings.cameras)} cameras ({', '.join(settings.cameras)}) through one "
                                   f"model, up to {len(settings.cameras)} frames per run")
        return super().on_configure(state)

    def _camera(self, name: str, pose: CameraPose | None, settings: NodeSettings) -> Camera:
        """One camera's subscriptions and outputs, its topics under its name; its pose from camera_pose, or
        where that is unset from TF (its images' frame_id)."""
        ground = GroundOutputs(self, OUTPUT_QOS, pose, settings.target_frame, settings.grid, self._log_once_per_cause,
                               prefix=name)
        return Camera(name=name, outputs=ImageOutputs.create(self, name), ground=ground,
                      input=CameraInput(self, settings.input_transport, settings.input_reliability,
                                        lambda msg: self._on_image(msg, name), ground.on_camera_info, prefix=name))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.parts is not None
        result = super().on_activate(state)  # lifecycle publishers publish from here on
        if result != SUCCESS:
            return result
        self._publish_label_info()
        self.parts.worker.start()
        for camera in self.parts.cameras.values():
            camera.input.start()
            camera.subscribed_at, camera.last_received = time.monotonic(), None
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_input()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_input()
        self._release()
        return SUCCESS

    def stop_input(self) -> None:
        """Unsubscribe, then let the worker finish its frame; the configured parts stay (deactivate, shutdown,
        and main() before the node is destroyed)."""
        if self.parts is not None:
            for camera in self.parts.cameras.values():
                camera.input.stop()
            self.parts.worker.stop()

    def _release(self) -> None:
        """Back to unconfigured: every part goes (TensorRT's CUDA context and GPU buffers now, not at exit)."""
        parts, self.parts = self.parts, None
        if parts is None:
            return
        self.destroy_timer(parts.diagnostics_timer)
        for camera in parts.cameras.values():
            camera.outputs.close(self)
            camera.ground.close()
        if parts.surround is not None:
            parts.surround.close()
        parts.pipeline.perception.close()

    def _publish_label_info(self) -> None:
        assert self.parts is not None
        for camera in self.parts.cameras.values():
            camera.outputs.labels.publish(label_info_msg(
                Header(stamp=self.get_clock().now().to_msg()), self.parts.pipeline.class_names,
                self.parts.settings.perception.score_threshold))

    # frames ----------------------------------------------------------------------------------
    def _on_image(self, msg: Image | CompressedImage, camera: str) -> None:
        parts = self.parts
        if parts is not None:
            self.stats.on_received(parts.worker.put(msg, camera), stamp_ns=to_ns(msg.header.stamp), source=camera)
            parts.cameras[camera].last_received = time.monotonic()

    def _process(self, batch: list[Arrival]) -> None:
        """The newest frame of each camera that has one, through the pipeline as one batch; each camera's
        detections published as soon as they exist, then its masks and ground outputs."""
        parts = self.parts
        if parts is None:
            return
        arrivals = {arrival.camera: arrival for arrival in batch}
        frames = [CameraFrame(a.camera, to_ns(a.message.header.stamp), encoded_image(a.message),
                              parts.cameras[a.camera].ground.geometry(a.message.header.frame_id)) for a in batch]

        def publish_detections(result: FrameResult) -> None:
            header = arrivals[result.frame.camera].message.header
            parts.cameras[result.frame.camera].outputs.publish_detections(header, result, parts.pipeline.class_names)

        try:
            results = parts.pipeline.run(frames, publish_detections)
        except Exception as err:  # noqa: BLE001 - one failed batch must not stop the node
            self._frame_failed(err, count=len(frames))
            return
        for result in results:
            self._publish(parts, arrivals[result.frame.camera], result)
        if parts.surround is not None:
            try:
                parts.surround.publish()
            except Exception as err:  # noqa: BLE001 - one failed grid must not stop the node
                self._frame_failed(err)

    def _publish(self, parts: Configured, arrival: Arrival, result: FrameResult) -> None:
        if result.damage is not None:
            self.stats.on_damaged()
            self._log_once_per_cause(f"a damaged jpeg frame ({result.damage.split(':')[0]}; in transit?): answered, "
                                     "but its damaged part is grey or smeared", True)
        if result.problem is not None:
            if result.bad:
                self.stats.on_bad_frame()
            else:
                self.stats.on_error()
            self._log_once_per_cause(result.problem, result.bad)
            return
        camera, header = parts.cameras[result.frame.camera], arrival.message.header
        try:
            camera.outputs.publish_images(header, result, parts.pipeline.class_names, parts.settings.publish_overlay)
            camera.ground.publish(header, result, parts.pipeline.class_names)
            if result.ground is not None and parts.surround is not None:
                parts.surround.update(camera.name, result.frame.stamp_ns, result.ground.occupancy, arrival.received)
        except Exception as err:  # noqa: BLE001 - one failed frame must not stop the node
            self._frame_failed(err)
            return
        self.stats.on_processed(1e3 * (time.monotonic() - arrival.received), result.timings["inference"])

    def _frame_failed(self, err: BaseException, count: int = 1) -> None:
        """A fault in a batch's handling (the worker's catch-all among them): counted, logged, survived."""
        if not self.context.ok():  # Ctrl-C: rclpy shut the context down under this frame; nothing failed
            return
        for _ in range(count):
            self.stats.on_error()
        self._log_once_per_cause(f"frame failed: {type(err).__name__}: {err}", False)

    def _publish_diagnostics(self) -> None:
        if self.parts is not None:
            status = diagnostic_status(self.get_fully_qualified_name(), self.parts, self.stats, time.monotonic())
            self.diagnostics_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                         status=[status]))

    def destroy_node(self) -> None:
        unbridge_package_logging(self._log_bridge)
        super().destroy_node()

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Live parameters take effect on the next frame; an invalid value is refused with the reason. Ranges
        and types are checked by rclpy from the descriptors before this runs."""
        changes = {p.name: p.value for p in params}
        parts = self.parts
        if parts is None:
            return SetParametersResult(successful=True)  # unconfigured: read at the next configure
        fixed = sorted(set(changes) - LIVE)
        if fixed:
            return SetParametersResult(successful=False, reason=read_only_refusal(
                fixed, self.get_fully_qualified_name(), parts.worker.running))
        try:
            settings = updated_settings(parts.settings, changes)
        except ValueError as err:
            return SetParametersResult(successful=False, reason=str(err))
        parts.settings = settings
        parts.pipeline.perception.config = settings.perception  # read once per frame by the worker
        parts.pipeline.set_tracking(settings.tracking)
        if "score_threshold" in changes and parts.worker.running:  # active: the latched label_info says it too
            self._publish_label_info()
        self.get_logger().info("set " + ", ".join(f"{k}={v}" for k, v in changes.items()))
        return SetParametersResult(successful=True)
