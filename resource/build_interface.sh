#!/usr/bin/env bash
# Build one of resource/'s interface packages (vision_msgs, mtl_perception_msgs) from its msg/ into a Python
# venv that has the ROS 2 PyPI wheels. Does nothing when the package is importable from outside the venv (apt, a
# sourced ROS 2 workspace): that one wins.
# usage: resource/build_interface.sh PACKAGE VENV_DIR
set -euo pipefail
package=$1
venv=$(cd "$2" && pwd)
src=$(cd "$(dirname "$0")/$package" && pwd)
py="$venv/bin/python"
log="$venv/$package-build.log"

existing=$("$py" -c "import $package, os; print(os.path.dirname($package.__file__))" 2>/dev/null || true)
if [ -n "$existing" ] && [[ "$existing" != "$venv"* ]]; then
  echo "$package found at $existing (system ROS 2): not building our copy"
  exit 0
fi

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
echo "building $package into $venv (log: $log)"
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
{
  cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF
  cmake --build "$build" -j "$(nproc)"
  cmake --install "$build"
} > "$log" 2>&1 || {
  tail -n 30 "$log" >&2
  echo "$package build failed; full log: $log" >&2
  exit 1
}
"$py" -c "import $package.msg" || {
  echo "$package was built but does not import; see $log" >&2
  exit 1
}
echo "$package built"
