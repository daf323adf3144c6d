#!/usr/bin/env bash
# A Debian bookworm arm64 system run with qemu-user-static: the stand-in for a Raspberry Pi (Pi OS is bookworm,
# Python 3.11, aarch64). Built once into a cache folder outside the checkout, then reused.
#   tools/arm64_rootfs.sh build              debootstrap (--foreign + second stage under qemu) + a venv with the
#                                            aarch64 runtime wheels; idempotent (a finished build is kept)
#   tools/arm64_rootfs.sh run [--cpu C] -- CMD...   run CMD (bash -c) inside, as root, /work = $EDGEKIT_ARM64_SHARE
#   tools/arm64_rootfs.sh path               print the rootfs folder
#   tools/arm64_rootfs.sh check              say whether binfmt/qemu work here
# Env: EDGEKIT_ARM64_CACHE (default /var/cache/edgekit-arm64), QEMU_CPU or --cpu cortex-a72 (Pi 4) | cortex-a76
# (Pi 5). /proc and /dev are bind-mounted, /sys is NOT: onnxruntime's import crashes under qemu when it can read it.
set -euo pipefail
cache="${EDGEKIT_ARM64_CACHE:-/var/cache/edgekit-arm64}"
root="$cache/rootfs-bookworm"
mirror="${EDGEKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The runtime wheels a Pi gets from PyPI for cp311/aarch64, pinned as the raspberry-pi profiles pin them (targets/;
# measured: all exist as aarch64 wheels; psutil 5.9.5 has none, 6.1.1 has). Installed into /opt/venv at build
# time: it proves they install and import, and it fills pip's cache (the cache folder's) for the tests' venvs.
wheels=(${EDGEKIT_ARM64_WHEELS:-numpy==1.26.4 ncnn==1.0.20261020 onnxruntime==1.23.0 MNN==3.6.1 ai-edge-litert==2.1.0
        opencv-python-headless==4.11.0.86 onnx==1.19.1 psutil==6.1.1 rich==15.0.0 pyyaml==6.0.2
        pyclipper==1.3.0.post6 shapely==2.1.1})

die() { echo "arm64_rootfs: $*" >&2; exit 2; }

ensure_binfmt() {
  # qemu-user-static registers qemu-aarch64 with the F (fix-binary) flag: the interpreter is opened at registration,
  # so it works inside the chroot without a copy there. Mount binfmt_misc and enable it where it is not yet.
  command -v qemu-aarch64-static >/dev/null || die "qemu-aarch64-static missing: apt-get install -y qemu-user-static binfmt-support"
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
  if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    binfmt=1
  else
    # no binfmt_misc (an unprivileged container): a single process still runs with qemu named explicitly, but
    # anything that execs another aarch64 program (debootstrap, pip, bash) cannot; say so plainly.
    binfmt=0
  fi
}

mount_all() {
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mountpoint -q "$root/dev" || mount --rbind /dev "$root/dev"
  mkdir -p "$cache/pip-cache" "$root/root/.cache/pip" "$root/work"
  mountpoint -q "$root/root/.cache/pip" || mount --bind "$cache/pip-cache" "$root/root/.cache/pip"
  if [ -n "${EDGEKIT_ARM64_SHARE:-}" ]; then
    mountpoint -q "$root/work" && umount "$root/work"
    mount --bind "$EDGEKIT_ARM64_SHARE" "$root/work"
  fi
  # the host's network set-up: its resolver, and the certificates it trusts (a proxy's own CA, where the host's
  # network has one: pip inside then trusts what pip on the host trusts)
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  # /sys is not the host's (onnxruntime's import crashes under qemu on it), but with no CPU lists at all
  # onnxruntime 1.23's cpuinfo throws at import (measured): a Pi's 4 cores, as plain files
  mkdir -p "$root/sys/devices/system/cpu"
  for f in possible present online; do echo "0-$(( ${EDGEKIT_ARM64_CORES:-4} - 1 ))" > "$root/sys/devices/system/cpu/$f"; done
  cp -L "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/host-ca-certificates.crt" 2>/dev/null || true
}

umount_all() {
  for m in work root/.cache/pip dev proc; do
    mountpoint -q "$root/$m" && umount -R -l "$root/$m" 2>/dev/null || true
  done
}

inside() {  # inside CPU CMD: run bash -c CMD in the chroot
  local cpu="$1"; shift
  local net=()
  [ -f "$root/etc/ssl/host-ca-certificates.crt" ] && net+=(PIP_CERT=/etc/ssl/host-ca-certificates.crt
                                                            SSL_CERT_FILE=/etc/ssl/host-ca-certificates.crt)
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL PIP_DEFAULT_TIMEOUT; do
    [ -n "${!v:-}" ] && net+=("$v=${!v}")
  done
  if [ "$binfmt" = 1 ]; then
    env -i QEMU_CPU="$cpu" HOME=/root PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
      PIP_DISABLE_PIP_VERSION_CHECK=1 "${net[@]}" chroot "$root" /bin/bash -c "$*"
  else
    cp /usr/bin/qemu-aarch64-static "$root/usr/bin/"
    env -i HOME=/root PATH=/opt/venv/bin:/usr/bin:/bin LANG=C.UTF-8 \
      chroot "$root" /usr/bin/qemu-aarch64-static -cpu "$cpu" /bin/bash -c "$*"
  fi
}

build() {
  mkdir -p "$cache"
  exec 9>"$cache/.build.lock"
  flock 9  # one build at a time; a second waits, then finds the work done
  ensure_binfmt
  [ "$binfmt" = 1 ] || die "binfmt_misc is not available here (mount -t binfmt_misc failed): debootstrap's second stage needs it"
  command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install -y debootstrap"
  local t0; t0=$(date +%s)
  mkdir -p "$cache"
  if [ ! -e "$root/.stage2-done" ]; then
    rm -rf "$root"
    debootstrap --arch=arm64 --foreign --variant=minbase \
      --include=python3,python3-venv,python3-pip,openssh-server,ca-certificates,libgomp1,libglib2.0-0 \
      bookworm "$root" "$mirror"
    inside cortex-a72 "/debootstrap/debootstrap --second-stage"
    touch "$root/.stage2-done"
  fi
  local t1; t1=$(date +%s)
  trap umount_all EXIT
  mount_all
  if [ ! -e "$root/.venv-done" ]; then
    rm -rf "$root/opt/venv"  # a build stopped half-way starts its venv again
    inside cortex-a72 "python3 -m venv /opt/venv"
    # pip's cache lives in the cache folder (bind-mounted), so a rebuild re-downloads nothing
    inside cortex-a72 "pip install --no-compile ${wheels[*]}"  # no .pyc compile under emulation: minutes saved
    touch "$root/.venv-done"
  fi
  local t2; t2=$(date +%s)
  inside cortex-a72 "python3 -c 'import platform, numpy, ncnn, onnxruntime, MNN, cv2, ai_edge_litert.interpreter
print(\"imports ok:\", platform.machine(), \"Python\", platform.python_version(), \"onnxruntime\", onnxruntime.__version__)'"
  echo "arm64_rootfs: ready in $root (debootstrap $((t1 - t0)) s, venv + wheels $((t2 - t1)) s)"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  build) build ;;
  path) echo "$root" ;;
  umount) umount_all ;;
  check) ensure_binfmt; echo "binfmt=$binfmt root=$root ready=$([ -e "$root/.venv-done" ] && echo 1 || echo 0)" ;;
  run)
    cpu="${QEMU_CPU:-cortex-a72}"
    if [ "${1:-}" = "--cpu" ]; then cpu="$2"; shift 2; fi
    [ "${1:-}" = "--" ] && shift
    [ -e "$root/.venv-done" ] || die "no arm64 system in $root yet: run tools/arm64_rootfs.sh build"
    ensure_binfmt
    mount_all  # left mounted (idempotent): a daemon started inside (sshd) outlives this call; `umount` undoes it
    inside "$cpu" "$*"
    ;;
  *) die "usage: arm64_rootfs.sh build | run [--cpu cortex-a72|cortex-a76] -- CMD | path | check" ;;
esac
