#!/usr/bin/env bash
# Build the vision_msgs interface package from ./msg into a Python venv that has
# the ROS 2 PyPI wheels. Does nothing when a vision_msgs from outside the venv
# (apt, a sourced ROS 2 workspace) is importable: that one wins.
# usage: resource/vision_msgs/build.sh VENV_DIR
set -euo pipefail
venv=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
py="$venv/bin/python"

existing=$("$py" -c 'import vision_msgs, os; print(os.path.dirname(vision_msgs.__file__))' 2>/dev/null || true)
if [ -n "$existing" ] && [[ "$existing" != "$venv"* ]]; then
  echo "vision_msgs found at $existing (system ROS 2): not building our copy"
  exit 0
fi

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
echo "building vision_msgs into $venv (log: $venv/vision_msgs-build.log)"
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
{
  cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF
  cmake --build "$build" -j "$(nproc)"
  cmake --install "$build"
} > "$venv/vision_msgs-build.log" 2>&1 || {
  tail -n 30 "$venv/vision_msgs-build.log" >&2
  echo "vision_msgs build failed; full log: $venv/vision_msgs-build.log" >&2
  exit 1
}
"$py" -c 'from vision_msgs.msg import Detection2DArray, LabelInfo' || {
  echo "vision_msgs was built but does not import; see $venv/vision_msgs-build.log" >&2
  exit 1
}
echo "vision_msgs built"
