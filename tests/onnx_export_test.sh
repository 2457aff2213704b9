#!/usr/bin/env bash
# onnx_export_test.sh: `hd-gpu export` end to end. Usage: onnx_export_test.sh HD_GPU ONNX_TEST_HELPER
# 1. Bad input, through the real program: one line, exit 1, no file (partial or temporary) left behind
#    and an existing output left as it was: an output path that cannot be written, corrupt and truncated
#    checkpoints, a run directory without best.safetensors; usage errors exit 2, as does an output that is
#    the checkpoint itself.
# 2. The real consumer: a model trained for one epoch by `hd-gpu train` (and one by `--model-spec fast`, whose
#    inputs are normalised), and two initialised models whose
#    specs reach every layer kind and mapping (conv without ReLU, dense straight after 1x1 outputs, a conv
#    after flatten, conv stride and padding, avgpool, gap), a briefly trained one with batch norm and
#    standalone relu layers, exported with and without --softmax, checked by python3-onnx's checker and run in
#    ONNX Runtime (onnxruntime-node, tests/onnx_check.js) on all 10,000 MNIST test images against hd-gpu's
#    logits: |onnx - hd-gpu| <= 1e-4 + 1e-4 |hd-gpu| on every value, and the same label on every image
#    (for the untrained models, whose top two outputs can be closer than rounding, an image whose top two are
#    within 1e-4 may take either).
#    Skipped (77) without node, onnxruntime-node (scripts/install-deps puts it in .deps/node), python3-onnx
#    or the MNIST test files.
set -u
bin=$1
helper=$2
src=${HD_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
data=${HD_TEST_DATA_DIR:-$src/data/mnist}
atol=1e-4
rtol=1e-4
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "FAIL: $*" >&2
}
# expect CODE PATTERN -- command...: exit code CODE and, for 1, exactly one line on stderr matching PATTERN.
expect() {
    local code=$1 pattern=$2
    shift 3
    local rc
    "$@" >"$tmp/stdout" 2>"$tmp/err"
    rc=$?
    if [ "$rc" != "$code" ] || ! grep -qE -- "$pattern" "$tmp/err" ||
        { [ "$code" = 1 ] && [ "$(wc -l <"$tmp/err")" != 1 ]; }; then
        bad "'$*' exited $rc (expected $code), stderr did not match /$pattern/ in one line:"
        head -5 "$tmp/err" >&2
    else
        ok
    fi
}
no_files_in() { # no_files_in DIR: DIR holds nothing (no partial or temporary file)
    if [ -z "$(ls -A "$1")" ]; then ok; else bad "$1 holds $(ls -A "$1" | tr '\n' ' ')"; fi
}

if "$bin" export --help | grep -q "built without"; then
    echo "SKIP: hd-gpu built without ONNX export"
    exit 77
fi

# ---- 1. bad input ----
"$helper" init "conv:4:3:relu,maxpool:2,flatten,dense:10" 1 "$tmp/small.safetensors" >/dev/null ||
    { echo "FAIL: could not make a checkpoint"; exit 1; }
expect 2 "--model and -o are both needed" -- "$bin" export --model "$tmp/small.safetensors"
expect 2 "unknown option '--bogus'" -- "$bin" export --bogus
expect 2 "--output needs a value" -- "$bin" export --model "$tmp/small.safetensors" -o
cp "$tmp/small.safetensors" "$tmp/small.copy"
expect 2 "$tmp/small.safetensors: that is the checkpoint itself" -- \
    "$bin" export --model "$tmp/small.safetensors" -o "$tmp/small.safetensors"
if cmp -s "$tmp/small.safetensors" "$tmp/small.copy"; then ok; else bad "export replaced its own checkpoint"; fi
rm "$tmp/small.copy"

mkdir "$tmp/out"
expect 1 "$tmp/out/missing/m.onnx.*No such file or directory" -- \
    "$bin" export --model "$tmp/small.safetensors" -o "$tmp/out/missing/m.onnx"
touch "$tmp/out/file"
expect 1 "$tmp/out/file/m.onnx.*Not a directory" -- "$bin" export --model "$tmp/small.safetensors" -o "$tmp/out/file/m.onnx"
rm "$tmp/out/file"
mkdir "$tmp/out/dir" # a directory where the file should go: the rename fails after the write
expect 1 "$tmp/out/dir: cannot rename into place" -- "$bin" export --model "$tmp/small.safetensors" -o "$tmp/out/dir"
no_files_in "$tmp/out/dir"
rmdir "$tmp/out/dir"
no_files_in "$tmp/out"

# A corrupt checkpoint (one byte of the last tensor's data changed) and a truncated one: refused, naming
# the file; an existing output stays exactly as it was.
"$bin" export --model "$tmp/small.safetensors" -o "$tmp/out/m.onnx" >/dev/null || bad "export of a good checkpoint failed"
cp "$tmp/out/m.onnx" "$tmp/kept.onnx"
cp "$tmp/small.safetensors" "$tmp/corrupt.safetensors"
size=$(stat -c %s "$tmp/corrupt.safetensors")
printf '\x55' | dd of="$tmp/corrupt.safetensors" bs=1 seek=$((size - 3)) conv=notrunc status=none
expect 1 "$tmp/corrupt.safetensors: .*(CRC|checksum)" -- "$bin" export --model "$tmp/corrupt.safetensors" -o "$tmp/out/m.onnx"
head -c $((size / 2)) "$tmp/small.safetensors" >"$tmp/short.safetensors"
expect 1 "$tmp/short.safetensors: " -- "$bin" export --model "$tmp/short.safetensors" -o "$tmp/out/m.onnx"
expect 1 "$tmp/out/best.safetensors: cannot open" -- "$bin" export --model "$tmp/out" -o "$tmp/out/m.onnx"
if cmp -s "$tmp/out/m.onnx" "$tmp/kept.onnx" && [ "$(ls -A "$tmp/out")" = m.onnx ]; then ok; else
    bad "a failed export changed $tmp/out: $(ls -A "$tmp/out" | tr '\n' ' ')"
fi

# ---- 2. ONNX Runtime and the checker ----
skip() {
    echo "bad input: $passed passed, $failed failed; SKIP the ONNX Runtime part: $*"
    [ "$failed" = 0 ] && exit 77
    exit 1
}
export NODE_PATH=${HD_NODE_MODULES:-$src/.deps/node/node_modules}
command -v node >/dev/null || skip "no node (Debian: nodejs)"
node -e 'require("onnxruntime-node")' 2>/dev/null || skip "no onnxruntime-node in $NODE_PATH (scripts/install-deps)"
/usr/bin/python3 -c 'import onnx' 2>/dev/null || skip "no python3-onnx for its checker"
[ -f "$data/t10k-images-idx3-ubyte" ] || skip "no MNIST test set in $data"

check_model() { # check_model FILE OUTPUT_NAME CLASSES: the checker, and what README promises of the graph
    if /usr/bin/python3 - "$@" <<'PY'; then ok; else bad "python3-onnx on $1"; fi
import sys, onnx
path, out_name, classes = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = onnx.load(path)
onnx.checker.check_model(m, full_check=True)
assert m.producer_name == "hd-gpu" and m.producer_version and m.doc_string, "producer and doc string"
assert [(o.domain, o.version) for o in m.opset_import] == [("", 13)], m.opset_import
g = m.graph
assert [i.name for i in g.input] == ["input"] and [o.name for o in g.output] == [out_name]
def dims(v): return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
assert dims(g.input[0]) == ["N", 1, 28, 28], dims(g.input[0])
assert dims(g.output[0]) == ["N", classes], dims(g.output[0])
assert g.input[0].doc_string and g.output[0].doc_string and g.doc_string
assert all(n.name and n.doc_string for n in g.node), "every node named and documented"
assert (g.node[-1].op_type == "Softmax") == (out_name == "probabilities")
PY
}

run_ort() { # run_ort MODEL TAG [ties]: MODEL a checkpoint or a run directory; ties: see onnx_check.js
    local ckpt=$1 tag=$2 ties=${3:-}
    "$bin" export --model "$ckpt" -o "$tmp/$tag.onnx" >/dev/null || { bad "export $ckpt"; return; }
    "$bin" export --model "$ckpt" -o "$tmp/$tag-p.onnx" --softmax >/dev/null || { bad "export --softmax $ckpt"; return; }
    [ -d "$ckpt" ] && ckpt=$ckpt/best.safetensors
    check_model "$tmp/$tag.onnx" logits 10
    check_model "$tmp/$tag-p.onnx" probabilities 10
    "$helper" logits "$ckpt" "$data" "$tmp/$tag.f32" >/dev/null || { bad "hd-gpu logits of $ckpt"; return; }
    for kind in logits probabilities; do
        local model=$tmp/$tag.onnx
        [ $kind = probabilities ] && model=$tmp/$tag-p.onnx
        if node "$src/tests/onnx_check.js" "$model" "$data/t10k-images-idx3-ubyte" "$tmp/$tag.f32" $kind $atol $rtol ${ties:+"$ties"}; then
            ok
        else
            bad "ONNX Runtime and hd-gpu differ on $model"
        fi
    done
}

"$bin" train --device cpu --epochs 1 --train-limit 3000 --seed 1 --no-report --run-dir "$tmp/run" --data "$data" \
    >/dev/null 2>"$tmp/train.err" || { cat "$tmp/train.err" >&2; bad "training a model"; }
run_ort "$tmp/run" trained # the run directory: its best.safetensors
# --normalize (the fast preset): the export's Sub and Div take [0, 1] pixels as hd-gpu's own path does
"$bin" train --device cpu --model-spec fast --train-limit 3000 --seed 1 --no-report --run-dir "$tmp/run-fast" \
    --data "$data" >/dev/null 2>"$tmp/train-fast.err" || { cat "$tmp/train-fast.err" >&2; bad "training a fast model"; }
run_ort "$tmp/run-fast" normalized
"$helper" init "conv:8:5,maxpool:2,conv:16:3:relu,maxpool:10,dense:32:relu,dropout:0.25,dense:10" 2 \
    "$tmp/a.safetensors" >/dev/null || bad "init model a"
run_ort "$tmp/a.safetensors" a ties
"$helper" init "conv:4:3,maxpool:2,flatten,conv:12:1:relu,dense:10" 3 "$tmp/b.safetensors" >/dev/null ||
    bad "init model b"
run_ort "$tmp/b.safetensors" b ties
# Batch norm (BatchNormalization with the running statistics, after a conv and after a dense layer) and the
# standalone relu: trained briefly, so the running statistics are far from their initial 0 and 1.
"$bin" train --device cpu --epochs 1 --train-limit 1000 --seed 3 --no-report --run-dir "$tmp/run-bn" --data "$data" \
    --model-spec "conv:8:3,bn,relu,maxpool:2,flatten,dense:32,bn,relu,dropout:0.25,dense:10" \
    >/dev/null 2>"$tmp/train-bn.err" || { cat "$tmp/train-bn.err" >&2; bad "training a bn model"; }
run_ort "$tmp/run-bn" bn
# conv stride and padding (same, pN, a stride-2 5x5 and an even 4x4 kernel), average and global average
# pooling: 28 -> 14 -> 7 -> 7 -> 2 -> 1
"$helper" init "conv:8:5:s2:same:relu,avgpool:2,conv:16:3:p1,conv:16:4:s2:relu,gap,dense:10" 4 \
    "$tmp/c.safetensors" >/dev/null || bad "init model c"
run_ort "$tmp/c.safetensors" c ties

echo "onnx_export: $passed passed, $failed failed"
[ "$failed" = 0 ]
