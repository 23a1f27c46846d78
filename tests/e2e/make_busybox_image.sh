#!/usr/bin/env bash
# Makes the test image every agent e2e test runs: Debian's static busybox with its applet links,
# packed as an OCI image layout tarball that `ctr images import` (and orch's image import) takes.
#
#   tests/e2e/make_busybox_image.sh OUT.tar [NAME...]
#
# NAMEs default to docker.io/library/busybox:latest and orch.test/busybox:1. The image's default
# command is `sh`; it has /etc/passwd (root, nobody) and a world-writable /tmp.
set -euo pipefail

out=${1:?usage: $0 OUT.tar [NAME...]}
shift
names=("$@")
((${#names[@]} > 0)) || names=(docker.io/library/busybox:latest orch.test/busybox:1)
busybox=/bin/busybox  # from busybox-static (scripts/setup.sh installs it)
# Debian's `busybox` package puts a dynamic binary at the same path: useless in an image.
if [[ ! -x "$busybox" ]] || ldd "$busybox" >/dev/null 2>&1; then
  echo "$0: $busybox is missing or not static: install busybox-static" >&2
  exit 1
fi

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
chmod 0755 "$rootfs"
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,root,var,tmp}
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"
install -m 0755 "$busybox" "$rootfs/bin/busybox"
# --list-full prints each applet's install path ("bin/sh", "usr/bin/wget").
while read -r applet; do
  [[ -n "$applet" && "$applet" != bin/busybox ]] || continue
  [[ -d "$rootfs/${applet%/*}" ]] || mkdir -p "$rootfs/${applet%/*}"
  ln -s /bin/busybox "$rootfs/$applet"
done < <("$busybox" --list-full)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"

config='{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}'
bash "$(dirname "$0")/../../runtime/make_oci_image.sh" "$out" "$rootfs" "$config" "${names[@]}"
