#!/usr/bin/env bash
# Builds the auditlake image (Containerfile) without any registry, then runs it:
#   1. the base: mmdebstrap (Debian bookworm minbase, ca-certificates, user auditlake 10001),
#      imported into podman as localhost/auditlake-base:bookworm (made once);
#   2. the release binary (the features the tests and the bench use), copied in;
#   3. `podman build` -> localhost/auditlake:<version>;
#   4. in the image: --version, then generate + ingest + query on a lake in /data.
# Step 4 runs `podman run`; where the sandbox forbids containers (crun's setrlimit is refused
# on some hosts), it says so and runs the same commands in the image's exported file system
# under chroot as uid 10001 instead. Needs root (or sudo) for apt, mmdebstrap and chroot.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/auditlake-target}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null; then
  echo "installing podman and mmdebstrap (Debian packages)" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq podman mmdebstrap >/dev/null
fi
base=localhost/auditlake-base:bookworm
if ! $sudo podman image exists "$base"; then
  echo "making the base image with mmdebstrap" >&2
  tarball=$(mktemp --suffix=.tar)
  $sudo mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --customize-hook='chroot "$1" useradd --system --uid 10001 --user-group --home-dir /data --create-home auditlake' \
    bookworm "$tarball" http://deb.debian.org/debian
  $sudo podman import --quiet "$tarball" "$base" >/dev/null
  rm -f "$tarball"
fi
echo "building the release binary" >&2
cargo build --release --quiet --features cluster,gcs,azure
version=$("$CARGO_TARGET_DIR/release/auditlake" --version | awk '{print $2}')
image="localhost/auditlake:$version"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp Containerfile "$CARGO_TARGET_DIR/release/auditlake" "$context/"
# Symbols are most of the binary's size; backtraces keep function names from the symbol table.
strip --strip-debug "$context/auditlake"
$sudo podman build --quiet --build-arg "BASE=$base" -t "$image" "$context" >/dev/null
echo "built $image ($($sudo podman image inspect --format '{{.Size}}' "$image") bytes)" >&2

# The smoke test, as the image's entrypoint would run it.
smoke='auditlake --version &&
  auditlake --quiet generate --events 2000 --days 3 --out /data/feed.ndjson &&
  auditlake --quiet ingest /data/feed.ndjson &&
  auditlake query --format csv "SELECT count(*) AS events FROM audit_log"'
if out=$($sudo podman run --rm --network none --entrypoint /bin/sh "$image" -c "$smoke" 2>&1); then
  echo "podman run: ok" >&2
else
  echo "podman run failed here: $(echo "$out" | tail -1)" >&2
  echo "running the same commands in the image's file system under chroot instead" >&2
  container=$($sudo podman create "$image")
  $sudo podman export "$container" -o "$context/image.tar"
  $sudo podman rm --force "$container" >/dev/null
  mkdir "$context/root"
  $sudo tar -xf "$context/image.tar" -C "$context/root"
  status=0
  out=$($sudo chroot --userspec=10001:10001 "$context/root" /bin/sh -c "cd /data && PATH=/usr/local/bin:/usr/bin:/bin $smoke" 2>&1) || status=$?
  $sudo rm -rf "$context/root"
  [ "$status" -eq 0 ] || { echo "$out" >&2; echo "error: the smoke test failed in the image (status $status)" >&2; exit 1; }
fi
echo "$out"
echo "$out" | grep -qx '2000' || { echo "error: the image's smoke test did not count 2000 events" >&2; exit 1; }
echo "image $image works: tag and push it to your registry for deploy/kubernetes/" >&2
