#!/usr/bin/env bash
# Packs a root filesystem folder into an OCI image layout tarball (oci-layout, index.json, blobs:
# one gzip layer, config, manifest) that `ctr images import` and containerd's CRI accept.
#
#   make_oci_image.sh OUT.tar ROOTFS_DIR CONFIG_JSON NAME...
#
# CONFIG_JSON is the image's runtime config object, e.g. '{"Entrypoint":["/pause"]}'. Each NAME is
# a full reference ("docker.io/library/busybox:latest"); all point at the same manifest. The
# output is reproducible: same input, same bytes. Needs only tar, gzip, sha256sum, stat.
set -euo pipefail

usage() { echo "usage: $0 OUT.tar ROOTFS_DIR CONFIG_JSON NAME..." >&2; exit 2; }
(($# >= 4)) || usage
out=$1 rootfs=$2 runtime_config=$3
shift 3
[[ -d "$rootfs" ]] || { echo "$0: $rootfs is not a folder" >&2; exit 1; }

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  armv7l) arch=arm ;;
  *) arch=$(uname -m) ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/layout/blobs/sha256"
blobs=$work/layout/blobs/sha256

# Moves FILE into the blobs; leaves its digest (without "sha256:") in $blob_digest and its size
# in $blob_size.
add_blob() {
  blob_digest=$(sha256sum "$1" | cut -d' ' -f1)
  blob_size=$(stat -c %s "$1")
  mv "$1" "$blobs/$blob_digest"
}

# The layer: fixed owner, time and order so the digest depends on the content only.
# The root folder itself is left out (a temp folder's 0700 would become the image's "/").
(cd "$rootfs" && find . -mindepth 1 -maxdepth 1 -printf '%P\0' | LC_ALL=C sort -z) |
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$rootfs" --null -T - -cf "$work/layer.tar"
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
add_blob "$work/layer.tar.gz"
layer_digest=$blob_digest layer_size=$blob_size

printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$arch" "$runtime_config" "$diff_id" >"$work/config.json"
add_blob "$work/config.json"
config_digest=$blob_digest config_size=$blob_size

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$work/manifest.json"
add_blob "$work/manifest.json"
manifest_digest=$blob_digest manifest_size=$blob_size

# One index entry per name. containerd's importer takes the full name from
# io.containerd.image.name; org.opencontainers.image.ref.name carries the tag, per the OCI spec.
entries=""
for name in "$@"; do
  tag=${name##*:}
  [[ "$tag" == "$name" || "$tag" == */* ]] && tag=latest
  entries+=${entries:+,}$(printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"},"platform":{"architecture":"%s","os":"linux"}}' \
    "$manifest_digest" "$manifest_size" "$name" "$tag" "$arch")
done
printf '{"schemaVersion":2,"manifests":[%s]}' "$entries" >"$work/layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/layout" \
  -cf "$work/out.tar" oci-layout index.json blobs
mv "$work/out.tar" "$out"
