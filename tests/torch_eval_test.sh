#!/usr/bin/env bash
# torch_eval_test.sh: our checkpoints in PyTorch. Usage: torch_eval_test.sh HD_GPU ONNX_TEST_HELPER
# For each spec below: a model trained for one epoch on 1000 images (so batch norm's running statistics are
# far from their initial 0 and 1), then `hd-gpu eval` and scripts/torch-eval (the equivalent nn.Module,
# load_state_dict strict) on the same checkpoint and the same 500-image subset of the MNIST test set: the
# same accuracy line, and every logit within 1e-4 of hd-gpu's (onnx_test_helper's, the CPU backend's
# inference path). The specs reach every layer kind this build has, --normalize included; a spec with a
# kind this build does not know yet is reported and left out (not failed). Bad input: a checkpoint with a
# missing tensor is refused by torch-eval in one line, exit 1.
# Skipped (77) only where Debian's python3 cannot import torch (python3-torch; scripts/install-deps with
# HD_WITH_BENCH=1), or without the MNIST test files.
set -u
bin=$1
helper=$2
src=${HD_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
data=${HD_TEST_DATA_DIR:-$src/data/mnist}
python=/usr/bin/python3
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "FAIL: $*" >&2
}

if ! "$python" -c 'import torch' 2>/dev/null; then
    echo "SKIP: $python cannot import torch (Debian: python3-torch; HD_WITH_BENCH=1 scripts/install-deps)"
    exit 77
fi
[ -f "$data/t10k-images-idx3-ubyte" ] || { echo "SKIP: no MNIST test set in $data"; exit 77; }

# The first 500 test images and labels, as IDX files of their own.
mkdir "$tmp/subset"
"$python" - "$data" "$tmp/subset" 500 <<'PY' || { echo "FAIL: making the test subset"; exit 1; }
import struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name, header, size in (("t10k-images-idx3-ubyte", 16, 784), ("t10k-labels-idx1-ubyte", 8, 1)):
    blob = open(f"{src}/{name}", "rb").read()
    head = bytearray(blob[:header])
    struct.pack_into(">I", head, 4, n)
    open(f"{dst}/{name}", "wb").write(bytes(head) + blob[header:header + n * size])
PY

specs=(
    "conv:8:3,bn,relu,maxpool:2,flatten,dense:32,bn,relu,dropout:0.25,dense:10"
    "conv:6:5:relu,maxpool:2,conv:8:3,bn,relu,maxpool:10,dense:16:relu,bn,dense:10"
    "conv:4:3,maxpool:2,flatten,conv:12:1:relu,bn,relu,dense:10"
    "conv:8:3:s2:same,bn,relu,avgpool:2,conv:16:3:p1,bn,relu,gap,dense:10"
)
extra=("" "--normalize" "" "--normalize")
ran=0
for i in "${!specs[@]}"; do
    spec=${specs[$i]}
    run=$tmp/run$i
    # shellcheck disable=SC2086 # extra[i] is one flag or none
    if ! "$bin" train --device cpu --epochs 1 --train-limit 1000 --no-augment --batch-size 32 --seed 5 --no-report --quiet \
        --run-dir "$run" --data "$data" --model-spec "$spec" ${extra[$i]} >"$tmp/train.out" 2>"$tmp/train.err"; then
        if grep -q "bad layer" "$tmp/train.err"; then
            echo "note: this build does not know a layer of $spec yet: $(head -1 "$tmp/train.err")"
            continue
        fi
        bad "training $spec: $(head -3 "$tmp/train.err")"
        continue
    fi
    ran=$((ran + 1))
    ours=$("$bin" eval --device cpu --quiet --model "$run" --data "$tmp/subset" 2>&1 | grep -o "test accuracy [0-9.]*% ([0-9]* images)")
    theirs=$("$python" "$src/scripts/torch-eval" "$run" --data "$tmp/subset" --save-logits "$tmp/torch.f32" 2>&1)
    theirs_line=$(echo "$theirs" | grep -o "test accuracy [0-9.]*% ([0-9]* images)")
    echo "$spec ${extra[$i]}: hd-gpu '$ours', PyTorch '$theirs_line'"
    if [ -n "$ours" ] && [ "$ours" = "$theirs_line" ]; then ok; else bad "accuracy differs on $spec: $theirs"; fi
    "$helper" logits "$run/best.safetensors" "$tmp/subset" "$tmp/hd.f32" >/dev/null || { bad "hd-gpu logits"; continue; }
    if "$python" - "$tmp/hd.f32" "$tmp/torch.f32" <<'PY'; then ok; else bad "logits differ on $spec"; fi
import struct, sys
a, b = (open(p, "rb").read() for p in sys.argv[1:3])
assert len(a) == len(b) == 500 * 10 * 4, (len(a), len(b))
x, y = struct.unpack(f"<{len(a) // 4}f", a), struct.unpack(f"<{len(b) // 4}f", b)
worst = max(abs(p - q) for p, q in zip(x, y))
print(f"  logits of 500 images: max |hd-gpu - torch| = {worst:.3g} (allowed 1e-4)")
assert worst <= 1e-4
PY
done
[ "$ran" -ge 3 ] && ok || bad "only $ran specs ran"

# Bad input: a checkpoint without one of its tensors is refused by load_state_dict(strict=True), one line.
"$python" - "$tmp/run0/best.safetensors" "$tmp/broken.safetensors" <<'PY' || bad "making a broken checkpoint"
import json, struct, sys
blob = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + n])
entry = header.pop("bn1.running_var")
data = bytearray(blob[8 + n:])
begin, end = entry["data_offsets"]
del data[begin:end]
for k, v in header.items():
    if k != "__metadata__" and v["data_offsets"][0] >= end:
        v["data_offsets"] = [o - (end - begin) for o in v["data_offsets"]]
header["__metadata__"].pop("hd.data_crc32", None)
text = json.dumps(header).encode()
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + bytes(data))
PY
"$python" "$src/scripts/torch-eval" "$tmp/broken.safetensors" --data "$tmp/subset" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 1 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "bn1.running_var" "$tmp/err"; then ok; else
    bad "a missing tensor: exit $rc, stderr: $(cat "$tmp/err")"
fi

echo "torch_eval: $passed passed, $failed failed"
[ "$failed" = 0 ]
