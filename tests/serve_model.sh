#!/usr/bin/env bash
# serve_model.sh: the model the `hd-gpu serve` tests use (ctest fixture serve_model): a short CPU training
# of the default model on 10,000 MNIST images (about 90% test accuracy; seconds), into MODEL_DIR.
#   serve_model.sh HD_GPU MODEL_DIR MNIST_DIR     exit 77 (skipped) without MNIST
set -euo pipefail
bin=$1 out=$2 data=$3
if [ ! -f "$data/train-images-idx3-ubyte" ] && [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
    echo "serve_model: SKIP: no MNIST in $data"
    exit 77
fi
"$bin" train --device cpu --data "$data" --no-download --epochs 1 --train-limit 10000 --test-limit 1000 \
    --no-report --run-dir "$out" --overwrite | tail -n 1
test -f "$out/best.safetensors"
