#!/usr/bin/env bash
# gpu_deps_test.sh: bench/gpu-deps takes MNIST from where hd-gpu finds it ($HD_DATA_DIR, else the
# per-user cache ${XDG_CACHE_HOME:-~/.cache}/hd-gpu/mnist, else data/mnist), verifies the four files
# by SHA-256 (raw or .gz), and exits 1 with a message naming the directory or file when it cannot.
# Only --mnist-only runs (no apt-get); the cases with real data need $HD_TEST_DATA_DIR (else 77
# after the failure cases). Usage: gpu_deps_test.sh PATH/TO/bench/gpu-deps
set -u
deps_cmd=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/test_util/expect.sh"
names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

clean_env=(env -u HD_DATA_DIR -u XDG_CACHE_HOME HOME="$tmp/home")

# ---- nothing to find ----
expect 1 "no verified MNIST set in $tmp/none; get it with scripts/fetch-mnist" -- \
    "${clean_env[@]}" "$deps_cmd" --mnist-only --deps "$tmp/out" --data "$tmp/none"
expect 1 "no verified MNIST set in $tmp/nowhere; " -- \
    "${clean_env[@]}" HD_DATA_DIR="$tmp/nowhere" "$deps_cmd" --mnist-only --deps "$tmp/out"
expect 2 "unknown argument '--bogus'" -- "$deps_cmd" --bogus

data=${HD_TEST_DATA_DIR:-}
if [ -z "$data" ] || [ ! -f "$data/t10k-labels-idx1-ubyte" ]; then
    echo "gpu_deps_test: $passed passed, $failed failed; no MNIST in \$HD_TEST_DATA_DIR: the rest skipped"
    [ "$failed" = 0 ] || exit 1
    exit 77
fi

# ---- a set with one bad file: named, exit 1 ----
mkdir -p "$tmp/bad"
for n in "${names[@]}"; do ln -s "$data/$n" "$tmp/bad/$n"; done
rm "$tmp/bad/t10k-labels-idx1-ubyte"
head -c 5000 "$data/t10k-labels-idx1-ubyte" >"$tmp/bad/t10k-labels-idx1-ubyte"
expect 1 "$tmp/bad/t10k-labels-idx1-ubyte: SHA-256 mismatch" -- \
    "${clean_env[@]}" "$deps_cmd" --mnist-only --deps "$tmp/out" --data "$tmp/bad"
# $HD_DATA_DIR binds, as for hd-gpu: a bad set there is not passed over for a good cache.
mkdir -p "$tmp/home/.cache/hd-gpu/mnist"
for n in "${names[@]}"; do ln -s "$data/$n" "$tmp/home/.cache/hd-gpu/mnist/$n"; done
expect 1 "missing or bad: t10k-labels-idx1-ubyte" -- \
    "${clean_env[@]}" HD_DATA_DIR="$tmp/bad" "$deps_cmd" --mnist-only --deps "$tmp/out"

# ---- the per-user cache, where hd-gpu and scripts/fetch-mnist put it: found, gzipped, verified ----
expect 0 "MNIST from $tmp/home/.cache/hd-gpu/mnist, verified" -- \
    "${clean_env[@]}" "$deps_cmd" --mnist-only --deps "$tmp/out"
for n in "${names[@]}"; do
    cmp -s <(gzip -dc "$tmp/out/mnist/$n.gz") "$data/$n" && ok || bad "$tmp/out/mnist/$n.gz does not hold $data/$n"
done
# $XDG_CACHE_HOME's cache, from .gz files (copied as they are).
mkdir -p "$tmp/xdg/hd-gpu/mnist"
for n in "${names[@]}"; do cp "$tmp/out/mnist/$n.gz" "$tmp/xdg/hd-gpu/mnist/"; done
expect 0 "MNIST from $tmp/xdg/hd-gpu/mnist, verified" -- \
    "${clean_env[@]}" XDG_CACHE_HOME="$tmp/xdg" "$deps_cmd" --mnist-only --deps "$tmp/out2"
[ "$(ls "$tmp/out2/mnist" | wc -l)" = 4 ] && ok || bad "$tmp/out2/mnist does not hold the four files"

finish gpu_deps_test
