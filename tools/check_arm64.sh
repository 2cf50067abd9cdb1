#!/usr/bin/env bash
# Install the wheel on Debian arm64 (Raspberry Pi 4/5, Jetson-class CPUs) under
# qemu-user and run the demo and the core tests there, from the package index's
# aarch64 wheels. Run as root on a Debian/Ubuntu x86-64 host with network access
# to the Debian mirror and the package index:
#
#   sudo tools/check_arm64.sh [ROOT_DIR]      # default ROOT_DIR: /tmp/deepsort-edge-arm64
#
# Steps (each timed in the log): debootstrap a minimal Debian arm64 root (no
# libGL, no X11: like Raspberry Pi OS Lite), build the wheel here, install it
# with its `cpu` extra plus pytest/hypothesis/scipy into a venv inside the root,
# run `deepsort-edge demo` and the core tests, then add TrackEval (`eval` extra)
# and check whether OpenCV still imports, before and after the apt line README
# gives. A second run reuses the root. Env: DEBIAN_SUITE (default bookworm,
# Python 3.11), DEBIAN_MIRROR, PYTHON (the host Python with pip that builds the wheel),
# QEMU_CPU (default cortex-a72).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${1:-/tmp/deepsort-edge-arm64}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
APT_GL="libgl1 libglib2.0-0 libxcb1"  # what the full (non-headless) opencv-python needs
IMPORT_CV2="python -c 'import cv2; print(\"cv2\", cv2.__version__, cv2.__file__)'"
CORE_TESTS="tests/test_kernels.py tests/test_lap.py tests/test_tracker.py tests/test_embedder.py tests/test_packaging.py tests/test_synthetic.py tests/test_mot.py"

log() { printf '[check_arm64 %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
timed() {  # timed LABEL COMMAND...: run, log the duration and the outcome, return its status
    local label="$1" start rc=0
    shift
    start=$(date +%s)
    "$@" || rc=$?
    log "$label: $([ "$rc" = 0 ] && echo PASS || echo "FAIL (exit $rc)") in $(($(date +%s) - start)) s"
    return "$rc"
}
FAILED=0
PASS_ENV=()  # proxies and a private CA for pip, as on the host
for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL; do
    [ -n "${!var:-}" ] && PASS_ENV+=("$var=${!var}")
done
# qemu's default CPU ("max") offers SVE and SME, which no Raspberry Pi has; OpenBLAS
# then picks SME kernels that qemu 7.2 gets wrong (NaN in float32 matmul). Emulate
# the Raspberry Pi 4's core instead (override with QEMU_CPU=...).
QEMU_CPU="${QEMU_CPU:-cortex-a72}"
in_root() {  # run a bash script inside the arm64 root, with a clean environment
    chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb QEMU_CPU="$QEMU_CPU" "${PASS_ENV[@]}" \
        PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin /bin/bash -euo pipefail -c "$1"
}

[ "$(id -u)" = 0 ] || { echo "check_arm64.sh: run as root (debootstrap, chroot, mounts)" >&2; exit 2; }

# 1. Host tools (Debian packages).
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
    log "installing qemu-user-static and debootstrap"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static debootstrap
fi
log "$(qemu-aarch64-static --version | head -1)"

# 2. Let the kernel run aarch64 programs through qemu; the F flag loads the
#    interpreter now, so it also works inside the chroot.
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    grep -h '^:qemu-aarch64:' /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
fi
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || { echo "check_arm64.sh: qemu-aarch64 binfmt entry lacks the F flag" >&2; exit 2; }

# 3. A minimal Debian arm64 root.
if [ ! -x "$ROOT/usr/bin/python3" ]; then
    timed "debootstrap $SUITE arm64" debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,ca-certificates "$SUITE" "$ROOT" "$MIRROR"
fi
[ -x "$ROOT/usr/bin/python3" ] || { echo "check_arm64.sh: debootstrap failed" >&2; exit 1; }

# 4. The wheel (built here: it is pure Python) and the tests, outside any source tree.
rm -rf "$ROOT/opt/dist" "$ROOT/opt/check"
mkdir -p "$ROOT/opt/dist" "$ROOT/opt/check"
timed "build wheel" "${PYTHON:-python3}" -m pip wheel -q --no-deps "$REPO" -w "$ROOT/opt/dist"
cp -r "$REPO/tests" "$REPO/pyproject.toml" "$ROOT/opt/check/"
HOST_CA="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}"
if [ -n "$HOST_CA" ] && [ -f "$HOST_CA" ]; then
    cp -L "$HOST_CA" "$ROOT/opt/check/host-ca.pem" && PASS_ENV+=("PIP_CERT=/opt/check/host-ca.pem")
fi
WHEEL="$(basename "$(ls "$ROOT"/opt/dist/deepsort_edge-*.whl)")"

# 5. Mounts. qemu-user 7.2 passes the host's /proc/cpuinfo through, and ONNX
#    Runtime's CPU probe crashes on x86 text, so an ARM one (Cortex-A72, as on a
#    Raspberry Pi 4) is bound over it.
CPUINFO="$ROOT/opt/cpuinfo-arm64"
for i in $(seq 0 $(($(nproc) - 1))); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
    printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
done > "$CPUINFO"
MOUNTS=()
cleanup() { for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" || true; done; }
trap cleanup EXIT
bind() { mount "$@"; MOUNTS+=("${*: -1}"); }
bind -t proc proc "$ROOT/proc"
bind --bind "$CPUINFO" "$ROOT/proc/cpuinfo"
bind -t sysfs sys "$ROOT/sys"
bind --bind /dev "$ROOT/dev"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

log "inside: $(in_root 'uname -m; python3 --version' | tr '\n' ' ')(qemu -cpu $QEMU_CPU)"

# 6. Install into a fresh venv: the wheel with one ONNX Runtime (the cpu extra)
#    and the core test tools (pip's download cache in the root speeds up re-runs).
timed "pip install $WHEEL[cpu] pytest hypothesis scipy" in_root "
    rm -rf /opt/venv && python3 -m venv /opt/venv
    python -m pip install -q --upgrade pip
    pip install -q '/opt/dist/$WHEEL[cpu]' pytest hypothesis scipy
    pip list 2>/dev/null | grep -i -E '^(deepsort-edge|numba|numpy|onnxruntime|opencv-python[a-z-]*|supervision) '"

# 7. OpenCV imports without libGL (headless build), then the demo and the core tests.
#    A re-run first removes what step 8 installs, so the root is minimal again.
in_root "if dpkg -s libgl1 >/dev/null 2>&1; then apt-get purge -y -q --autoremove $APT_GL >/dev/null 2>&1; fi"
timed "import cv2 on a minimal root (no libGL)" in_root "$IMPORT_CV2" || FAILED=1
timed "deepsort-edge demo" in_root "cd /tmp && deepsort-edge demo --output-dir /tmp/demo" || FAILED=1
timed "core tests" in_root "cd /opt/check && pytest -q -p no:cacheprovider -m 'not slow' $CORE_TESTS" || FAILED=1

# 8. The eval extra adds TrackEval, which requires the full opencv-python build:
#    two OpenCV builds share cv2/, and the full one needs libGL (informational).
timed "pip install $WHEEL[cpu,eval]" in_root "pip install -q '/opt/dist/$WHEEL[cpu,eval]'
    pip list 2>/dev/null | grep -i -E '^(onnxruntime|opencv)'"
timed "import cv2 with the eval extra, no libGL (informational)" in_root "$IMPORT_CV2" || true
timed "apt-get install $APT_GL" in_root "apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $APT_GL >/dev/null 2>&1"
timed "import cv2 with the eval extra after apt-get" in_root "$IMPORT_CV2" || FAILED=1
# Motion only: step 7 already embedded the scene (ONNX Runtime is slow under emulation).
timed "deepsort-edge demo with metrics" in_root \
    "cd /tmp && deepsort-edge demo --no-video --no-appearance --output-dir /tmp/demo-eval" || FAILED=1
log "$([ "$FAILED" = 0 ] && echo "all checks PASS" || echo "some checks FAILED"); root kept at $ROOT (rm -rf it to start afresh)"
exit "$FAILED"
