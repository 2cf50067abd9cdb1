#!/usr/bin/env bash
# Install the wheel on Debian arm64 (Raspberry Pi 4/5, Jetson-class CPUs) under
# qemu-user and run the demo and the whole non-slow test suite there, from the
# package index's aarch64 wheels, once per CPU profile. Run as root on a
# Debian/Ubuntu x86-64 host with network access to the Debian mirror and the
# package index:
#
#   sudo tools/check_arm64.sh [ROOT_DIR]      # default ROOT_DIR: /tmp/deepsort-edge-arm64
#
# Steps (each timed in the log): debootstrap a minimal Debian arm64 root (no
# libGL, no X11: like Raspberry Pi OS Lite); take the committed tree at HEAD (`git
# archive`: what runs is exactly that commit, which the table names); build the
# wheel inside the root with gcc, so it carries the kernels compiled ahead of
# time for aarch64 (numba.pycc, the generic ARMv8-A CPU: runs on A72 and A76);
# remove the compiler again, install the wheel with its `cpu` extra into a venv
# and check that OpenCV imports; then, per profile (a fresh Numba cache each: the
# JIT kernels compile for that CPU), run `deepsort-edge demo` and time the first
# tracked frame with the compiled kernels against the JIT (tools/measure_start.py);
# then add the `test` extra (TrackEval, deep-sort-realtime: the full opencv-python,
# which needs the apt line README gives) and run `pytest -m "not slow"` for every
# profile at once (each in its own mount namespace with its own /proc/cpuinfo),
# with the shared data bound read-only when present. Finally the results
# replace README's ARM table (between its `arm64-table` markers), with the commit
# they ran at. A second run reuses the root.
# Env: PROFILES (default "pi4 pi5": Cortex-A72 and Cortex-A76), DEBIAN_SUITE
# (default bookworm, Python 3.11), DEBIAN_MIRROR, PYTHON (the host Python that
# rewrites README), DEEPSORT_EDGE_DATA (default ../shared/data beside the repo),
# DEEPSORT_EDGE_AOT_CPU (LLVM CPU of the compiled kernels; default generic),
# WRITE_README (default 1).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${1:-/tmp/deepsort-edge-arm64}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
APT_GL="libgl1 libglib2.0-0 libxcb1"  # what the full (non-headless) opencv-python needs
IMPORT_CV2="python -c 'import cv2; print(\"cv2\", cv2.__version__, cv2.__file__)'"
PROFILES="${PROFILES:-pi4 pi5}"
DATA="${DEEPSORT_EDGE_DATA:-$REPO/../shared/data}"
RESULTS="$(mktemp)"  # one line per step: profile<TAB>step<TAB>result<TAB>seconds

log() { printf '[check_arm64 %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
timed() {  # timed LABEL COMMAND...: run, log the duration and the outcome, return its status
    local label="$1" start rc=0
    shift
    start=$(date +%s)
    "$@" || rc=$?
    STEP_SECONDS=$(($(date +%s) - start))
    log "$label: $([ "$rc" = 0 ] && echo PASS || echo "FAIL (exit $rc)") in $STEP_SECONDS s"
    return "$rc"
}
record() {  # record PROFILE STEP RESULT: one row of README's table (the last timed step's seconds)
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$STEP_SECONDS" >> "$RESULTS"
}
outcome() { [ "$1" = 0 ] && echo pass || echo "fails (exit $1)"; }
FAILED=0
PASS_ENV=()  # proxies and a private CA for pip, as on the host
for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL; do
    [ -n "${!var:-}" ] && PASS_ENV+=("$var=${!var}")
done
# qemu's default CPU ("max") offers SVE and SME, which no Raspberry Pi has; OpenBLAS
# then picks SME kernels that qemu 7.2 gets wrong (NaN in float32 matmul). Each
# profile emulates a Raspberry Pi's core instead, with the /proc/cpuinfo it shows.
profile_cpu() {  # PROFILE -> "qemu-cpu cpu-part features" (features as the kernel lists them)
    case "$1" in
        pi4) echo "cortex-a72 0xd08 fp asimd evtstrm crc32 cpuid" ;;
        pi5) echo "cortex-a76 0xd0b fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
        *) echo "check_arm64.sh: unknown profile $1 (pi4, pi5)" >&2; exit 2 ;;
    esac
}
profile_name() { case "$1" in pi4) echo "Raspberry Pi 4 (Cortex-A72)" ;; pi5) echo "Raspberry Pi 5 (Cortex-A76)" ;; esac; }
QEMU_CPU=cortex-a72
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

# 4. The committed tree at HEAD, outside any source tree: the wheel is built from it
#    (step 6) and the tests run beside it (they read README.md, docs/, tools/ and the
#    sources; the `pytest` command still tests the installed wheel, tests/conftest.py).
COMMIT="$(git -C "$REPO" rev-parse --short HEAD)"  # now: HEAD may move while this runs
git -C "$REPO" diff --quiet HEAD || log "uncommitted changes in $REPO are not checked (the run is of $COMMIT)"
rm -rf "$ROOT/opt/dist" "$ROOT/opt/check"
mkdir -p "$ROOT/opt/dist" "$ROOT/opt/check"
git -C "$REPO" archive "$COMMIT" | tar -x -C "$ROOT/opt/check"
HOST_CA="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}"
if [ -n "$HOST_CA" ] && [ -f "$HOST_CA" ]; then
    cp -L "$HOST_CA" "$ROOT/opt/host-ca.pem" && PASS_ENV+=("PIP_CERT=/opt/host-ca.pem")
fi

# 5. Mounts. qemu-user 7.2 passes the host's /proc/cpuinfo through, and ONNX
#    Runtime's CPU probe crashes on x86 text, so the profile's ARM one is bound
#    over it (rewritten in place per profile, see use_profile). The shared data,
#    when present, is bound read-only (never copied).
CPUINFO="$ROOT/opt/cpuinfo-arm64"
cpuinfo_of() {  # cpuinfo_of PROFILE: the /proc/cpuinfo text a Raspberry Pi of that profile shows
    local spec part features
    spec="$(profile_cpu "$1")"
    part="$(echo "$spec" | cut -d' ' -f2)"
    features="$(echo "$spec" | cut -d' ' -f3-)"
    for i in $(seq 0 $(($(nproc) - 1))); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\n' "$i" "$features"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x%s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
            "$([ "$1" = pi5 ] && echo 4 || echo 0)" "$part" "$([ "$1" = pi5 ] && echo 1 || echo 3)"
    done
}
use_profile() {  # use_profile PROFILE: set QEMU_CPU and write its /proc/cpuinfo
    local spec
    spec="$(profile_cpu "$1")"
    QEMU_CPU="${spec%% *}"
    cpuinfo_of "$1" > "$CPUINFO.new"
    cat "$CPUINFO.new" > "$CPUINFO" && rm -f "$CPUINFO.new"  # same inode: the bind mount sees it
}
use_profile "${PROFILES%% *}"
MOUNTS=()
cleanup() { for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" || true; done; rm -f "$RESULTS"; }
trap cleanup EXIT
bind() { mount "$@"; MOUNTS+=("${*: -1}"); }
bind -t proc proc "$ROOT/proc"
bind --bind "$CPUINFO" "$ROOT/proc/cpuinfo"
bind -t sysfs sys "$ROOT/sys"
bind --bind /dev "$ROOT/dev"
DATA_ENV=""
if [ -f "$DATA/README.md" ]; then
    mkdir -p "$ROOT/opt/shared-data"
    bind --bind -o ro "$DATA" "$ROOT/opt/shared-data"
    mount -o remount,ro,bind "$ROOT/opt/shared-data" || true
    DATA_ENV="DEEPSORT_EDGE_DATA=/opt/shared-data"
fi
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

log "inside: $(in_root 'uname -m; python3 --version' | tr '\n' ' ')(qemu -cpu $QEMU_CPU)"

# 6. Build the wheel here, on aarch64, as `pip install .` on a Pi would: gcc present,
#    so hatch_build.py compiles the kernels ahead of time (numba.pycc) for the
#    generic ARMv8-A CPU (or DEEPSORT_EDGE_AOT_CPU). Where that fails, the record says
#    so and a pure wheel (the JIT kernels) is checked instead. Then the root is
#    minimal again (no compiler, no libGL: a re-run removes what step 8 installs) and
#    the wheel goes with one ONNX Runtime (the cpu extra) into a fresh venv (pip's
#    download cache in the root speeds up re-runs).
APT_CC="gcc g++ libc6-dev python3-dev"  # numba.pycc checks for a C and a C++ compiler, then needs Python.h
in_root "if dpkg -s libgl1 >/dev/null 2>&1; then apt-get purge -y -q --autoremove $APT_GL >/dev/null 2>&1; fi"
rc=0
timed "apt-get install $APT_CC" in_root "apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $APT_CC >/dev/null 2>&1
    gcc --version | head -1" || rc=$?
AOT_CPU="${DEEPSORT_EDGE_AOT_CPU:-}"
timed "build the wheel on aarch64 with gcc (kernels compiled ahead of time)" in_root "
    rm -rf /opt/build-venv && python3 -m venv /opt/build-venv
    /opt/build-venv/bin/python -m pip install -q --upgrade pip
    cd /tmp && DEEPSORT_EDGE_AOT=require DEEPSORT_EDGE_AOT_CPU='$AOT_CPU' \
        /opt/build-venv/bin/pip wheel -q --no-deps /opt/check -w /opt/dist" || rc=$?
AOT_BUILT=$rc
record all "build the wheel on aarch64 with gcc: kernels compiled ahead of time (${AOT_CPU:-generic} CPU)" "$(outcome $rc)"
if [ "$rc" != 0 ]; then
    FAILED=1
    timed "build a pure wheel instead (JIT kernels)" in_root "rm -f /opt/dist/*.whl
        cd /tmp && DEEPSORT_EDGE_AOT=0 /opt/build-venv/bin/pip wheel -q --no-deps /opt/check -w /opt/dist" || exit 1
fi
WHEEL="$(basename "$(ls "$ROOT"/opt/dist/deepsort_edge-*.whl)")"
log "wheel: $WHEEL"
in_root "apt-get purge -y -q --autoremove $APT_CC >/dev/null 2>&1; ! command -v gcc" \
    || log "the compiler is still in the root: the install below does not show that none is needed"
rc=0
timed "pip install $WHEEL[cpu]" in_root "
    rm -rf /opt/venv && python3 -m venv /opt/venv
    python -m pip install -q --upgrade pip
    pip install -q '/opt/dist/$WHEEL[cpu]'
    pip list 2>/dev/null | grep -i -E '^(deepsort-edge|numba|numpy|onnxruntime|opencv-python[a-z-]*) '" || rc=$?
record all "\`pip install\` the wheel \`[cpu]\` (aarch64 wheels), no compiler" "$(outcome $rc)"
[ "$rc" = 0 ] || FAILED=1

# 7. OpenCV imports without libGL (headless build); the demo per profile, each
#    with an empty Numba cache (the cold start on that CPU).
rc=0; timed "import cv2 on a minimal root (no libGL)" in_root "$IMPORT_CV2" || rc=$?
record all "\`import cv2\`, no libGL / X11" "$(outcome $rc)"; [ "$rc" = 0 ] || FAILED=1
for profile in $PROFILES; do
    use_profile "$profile"
    log "profile $profile: $(profile_name "$profile"), qemu -cpu $QEMU_CPU"
    rc=0
    timed "[$profile] deepsort-edge demo, empty Numba cache" in_root "
        export NUMBA_CACHE_DIR=/tmp/numba-demo-$profile; rm -rf \$NUMBA_CACHE_DIR
        cd /tmp && deepsort-edge demo --output-dir /tmp/demo-$profile" || rc=$?
    record "$profile" "\`deepsort-edge demo\` (empty Numba cache)" "$(outcome $rc)"; [ "$rc" = 0 ] || FAILED=1
    # Import + first tracked frame in fresh processes: the compiled kernels (empty cache),
    # then the JIT with an empty and a warm cache (tools/measure_start.py).
    rc=0
    timed "[$profile] first frame, compiled vs JIT" in_root "
        cd /tmp && python /opt/check/tools/measure_start.py --runs 1 --jit-runs 1 --json /tmp/start-$profile.json" || rc=$?
    summary="$(in_root "python - /tmp/start-$profile.json" <<'PY' || true
import json, sys
rows = {row["kind"]: row for row in json.load(open(sys.argv[1]))}
def s(kind):
    row = rows[kind]
    return f"{row['import_s'] + row['first_frame_s']:.1f} s"
compiled = ("compiled " + s("ahead-of-time, empty cache") if "ahead-of-time, empty cache" in rows
            else "no compiled kernels")
print(f"{compiled}; JIT {s('jit, empty cache')} (empty cache, "
      f"{rows['jit, empty cache'].get('compilations', '?')} compilations), {s('jit, warm cache')} (warm)")
PY
)"
    record "$profile" "import + first tracked frame (fresh process; tools/measure_start.py)" "${summary:-$(outcome $rc)}"
    [ "$rc" = 0 ] || FAILED=1
done

# 8. The test extra adds TrackEval and deep-sort-realtime, which require the full
#    opencv-python build: two OpenCV builds share cv2/, and the full one needs libGL.
rc=0
timed "pip install $WHEEL[cpu,test]" in_root "pip install -q '/opt/dist/$WHEEL[cpu,test]'
    pip list 2>/dev/null | grep -i -E '^(onnxruntime|opencv|torch|nvidia)'" || rc=$?
record all "add \`[test]\` (full opencv-python via TrackEval)" "$(outcome $rc)"; [ "$rc" = 0 ] || FAILED=1
rc=0; timed "import cv2 with the test extra, no libGL (informational)" in_root "$IMPORT_CV2" || rc=$?
record all "\`import cv2\` then, no libGL" "$([ "$rc" = 0 ] && echo pass || echo "fails: libGL/libxcb missing (expected)")"
rc=0
timed "apt-get install $APT_GL" in_root "apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $APT_GL >/dev/null 2>&1" || rc=$?
timed "import cv2 after apt-get" in_root "$IMPORT_CV2" || rc=$?
record all "the apt line above, then \`import cv2\`" "$(outcome $rc)"; [ "$rc" = 0 ] || FAILED=1

# 9. The whole non-slow suite per profile (float16 galleries and the bit-exact
#    gallery dot products included), each with an empty Numba cache;
#    with the compiled kernels built, tests/test_aot.py must find and compare them.
#    The profiles run at the same time (qemu is single-threaded per process, and a
#    suite takes about an hour under qemu): each in its own mount namespace, where its
#    own cpuinfo is bound over the root's /proc/cpuinfo, with its own pytest basetemp.
AOT_ENV=""; [ "$AOT_BUILT" = 0 ] && AOT_ENV="DEEPSORT_EDGE_EXPECT_AOT=1"
suite() {  # suite PROFILE: the suite under that profile's CPU; writes rc and seconds to /opt/suite-PROFILE
    local profile="$1" spec start rc=0
    spec="$(profile_cpu "$profile")"
    cpuinfo_of "$profile" > "$ROOT/opt/cpuinfo-$profile"
    start=$(date +%s)
    unshare -m --propagation private -- bash -c 'mount --bind "$1" "$2/proc/cpuinfo" && shift 2 && exec "$@"' _ \
        "$ROOT/opt/cpuinfo-$profile" "$ROOT" \
        chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb QEMU_CPU="${spec%% *}" "${PASS_ENV[@]}" \
        PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin /bin/bash -euo pipefail -c "
        export NUMBA_CACHE_DIR=/tmp/numba-tests-$profile $DATA_ENV $AOT_ENV; rm -rf \$NUMBA_CACHE_DIR
        cd /opt/check && pytest -q -p no:cacheprovider --basetemp=/tmp/pytest-base-$profile -m 'not slow' \
            > /tmp/pytest-$profile.log 2>&1" || rc=$?
    printf '%s %s\n' "$rc" "$(($(date +%s) - start))" > "$ROOT/opt/suite-$profile"
}
SUITES=()
for profile in $PROFILES; do
    log "[$profile] pytest -m 'not slow' started ($(profile_name "$profile"))"
    suite "$profile" & SUITES+=("$!")
done
for pid in "${SUITES[@]}"; do wait "$pid" || true; done
for profile in $PROFILES; do
    read -r rc STEP_SECONDS < "$ROOT/opt/suite-$profile"
    log "[$profile] pytest -m 'not slow': $([ "$rc" = 0 ] && echo PASS || echo "FAIL (exit $rc)") in $STEP_SECONDS s"
    tail -25 "$ROOT/tmp/pytest-$profile.log"
    summary="$(grep -E '[0-9]+ (passed|failed|errors?)' "$ROOT/tmp/pytest-$profile.log" | tail -1 \
        | sed -E 's/^=+ //; s/ in [0-9.]+s.*//; s/ =+$//' || true)"
    record "$profile" "\`pytest -m \"not slow\"\` (the whole suite but slow tests; empty Numba cache; profiles at once)" "${summary:-$(outcome $rc)}"
    [ "$rc" = 0 ] || FAILED=1
done

# 10. README's table: steps as rows, one result/time column pair per profile.
table() {
    local header sep profile
    printf '<!-- arm64-table:start (written by tools/check_arm64.sh) -->\n'
    printf 'At commit `%s`, %s, on %s x86-64 cores (qemu-user %s):\n\n' "$COMMIT" "$(date -u +%Y-%m-%d)" "$(nproc)" \
        "$(qemu-aarch64-static --version | head -1 | grep -o -E '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -1)"
    header="| step |"; sep="|---|"
    for profile in $PROFILES; do header+=" $(profile_name "$profile") | time |"; sep+="---|---:|"; done
    printf '%s\n%s\n' "$header" "$sep"
    cut -f2 "$RESULTS" | awk '!seen[$0]++' | while IFS= read -r step; do
        local row="| $step |"
        for profile in $PROFILES; do
            local line
            line="$(awk -F'\t' -v s="$step" -v p="$profile" '$2 == s && ($1 == p || $1 == "all")' "$RESULTS" | tail -1)"
            if [ -n "$line" ]; then row+=" $(echo "$line" | cut -f3) | $(echo "$line" | cut -f4) s |"; else row+=" | |"; fi
        done
        printf '%s\n' "$row"
    done
    printf '<!-- arm64-table:end -->\n'
}
table > "$ROOT/opt/arm64-table.md"
cat "$ROOT/opt/arm64-table.md"
if [ "${WRITE_README:-1}" = 1 ] && grep -q '<!-- arm64-table:start' "$REPO/README.md"; then
    "${PYTHON:-python3}" - "$REPO/README.md" "$ROOT/opt/arm64-table.md" <<'PY'
import re, sys
readme, table = (open(p, encoding="utf-8").read() for p in sys.argv[1:3])
pattern = re.compile(r"<!-- arm64-table:start.*?<!-- arm64-table:end -->\n", re.S)
open(sys.argv[1], "w", encoding="utf-8").write(pattern.sub(lambda _: table, readme, count=1))
PY
    log "README.md: ARM table rewritten"
fi
log "$([ "$FAILED" = 0 ] && echo "all checks PASS" || echo "some checks FAILED"); root kept at $ROOT (rm -rf it to start afresh)"
exit "$FAILED"
