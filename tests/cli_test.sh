#!/usr/bin/env bash
# cli_test.sh: the hd-gpu program's exit codes (0 ok, 1 runtime error, 2 usage error) and
# one-line messages, end to end. Usage: cli_test.sh PATH/TO/hd-gpu
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/test_util/expect.sh"


expect 0 "^hd-gpu [0-9]+\.[0-9]+" -- "$bin" --version
expect 0 "^features: (no )?cuda, " -- "$bin" --version
expect 0 "usage: hd-gpu COMMAND" -- "$bin" --help
# OpenBLAS' kernels: on a CPU with AVX2 and FMA the program runs kernels built on them, also where
# OpenBLAS does not know the CPU's model (hd_blas_choose_kernels); OPENBLAS_CORETYPE, when set, wins.
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && "$bin" --version | grep -q "DYNAMIC_ARCH"; then
    expect 0 "^cpu: OpenBLAS .*; kernels (Haswell|Zen|SkylakeX|Cooperlake|SapphireRapids|Excavator)$" -- \
        env -u OPENBLAS_CORETYPE "$bin" --version
    # The program executed again, whatever OpenBLAS picks here: as if it had picked Prescott.
    expect 0 "^cpu: OpenBLAS .*; kernels (Haswell|SkylakeX)$" -- \
        env -u OPENBLAS_CORETYPE HD_TEST_BLAS_PICKED=Prescott "$bin" --version
    # Started through the dynamic loader, it runs as it is (executing itself again would start ld.so).
    loader=$(sed -n 's/.*\(\/lib[^ ]*ld-linux[^ ]*\.so\.[0-9]\).*/\1/p' <(ldd "$bin") | head -n 1)
    if [ -n "$loader" ]; then
        expect 0 "^cpu: OpenBLAS .*; kernels " -- env -u OPENBLAS_CORETYPE HD_TEST_BLAS_PICKED=Prescott "$loader" "$bin" --version
        # Under a CUDA tool (compute-sanitizer, Nsight) it runs as it is too: the kernels OpenBLAS picked,
        # as through the loader (this tells only on a CPU where OpenBLAS picks narrow ones, as on this
        # project's Emerald Rapids machines).
        picked=$(env -u OPENBLAS_CORETYPE "$loader" "$bin" --version | grep '^cpu: ')
        expect 0 "^${picked//./\\.}\$" -- env -u OPENBLAS_CORETYPE HD_TEST_BLAS_PICKED=Prescott \
            CUDA_INJECTION64_PATH=/nonexistent/libtool.so "$bin" --version
    fi
fi
if "$bin" --version | grep -q "DYNAMIC_ARCH"; then
    expect 0 "^cpu: OpenBLAS .*; kernels Prescott$" -- env OPENBLAS_CORETYPE=Prescott "$bin" --version
fi
expect 2 "unknown command 'frobnicate'" -- "$bin" frobnicate
expect 2 "usage" -- "$bin"
expect 0 "--epochs N" -- "$bin" train --help
expect 0 "--model FILE" -- "$bin" eval --help
expect 2 "unknown option '--bogus'" -- "$bin" train --bogus
expect 2 "--epochs '0'" -- "$bin" train --epochs 0
expect 2 "--device 'gpu7'" -- "$bin" train --device gpu7 --data "$tmp" --no-download
expect 2 "--model FILE is required" -- "$bin" eval
# bench --spec takes a preset's name for its layers, as train --model-spec does.
expect 0 "model: \`conv:24:5:relu,maxpool:2,conv:32:3:relu,maxpool:2,flatten,dense:256:relu,dense:10\`" -- \
    "$bin" bench --device cpu --threads 1 --quick --spec fast --batches 4 --repeats 1 --min-steps 1 --min-time 0 \
    --infer-batch 4 --latency-iters 1 --peak-size 64 --markdown -
# help COMMAND is COMMAND --help; misspelt commands and options get the nearest name.
expect 0 "^usage: hd-gpu train \[options\]" -- "$bin" help train
expect 0 "usage: hd-gpu COMMAND" -- "$bin" help
expect 0 "" -- cmp <("$bin" help predict) <("$bin" predict --help)
expect 2 "unknown command 'trian'; did you mean 'train'\?" -- "$bin" trian
expect 2 "unknown command 'evl'; did you mean 'eval'\?" -- "$bin" help evl
expect 2 "unknown option '--epocs'; did you mean '--epochs'\?" -- "$bin" train --epocs 3
expect 2 "unknown option '--mdoel'; did you mean '--model'\?" -- "$bin" predict --mdoel x.safetensors a.png
expect 2 "^hd-gpu train: --epochs needs a value" -- "$bin" train --epochs
expect 2 "^hd-gpu train: --quiet takes no value" -- "$bin" train --quiet=yes
expect 2 "^hd-gpu train: unexpected argument 'extra'" -- "$bin" train extra
# eval and predict list only their own options; report's help has the others' layout.
for cmd in eval predict; do
    expect 1 "" -- grep -q -- "--no-graph" <("$bin" $cmd --help)
    expect 0 "" -- grep -q -- "--quiet" <("$bin" $cmd --help)
done
expect 0 "^  -h, --help         this text$" -- "$bin" report --help
expect 0 "^Options:$" -- "$bin" report --help
# Every option of every table is in its command's --help, in the bash completion (in its command's
# list) and in the man page.
completion=$("$bin" --completion bash)
man=$("$bin" --man)
n_options=0
while read -r cmd option; do
    n_options=$((n_options + 1))
    expect 0 "" -- grep -qE -- "^  (-[a-z], )?$option( |$)" <("$bin" "$cmd" --help)
    expect 0 "" -- grep -qE -- "^    $cmd\)$" <<<"$completion"
    expect 0 "" -- grep -qE -- "opts=\"[^\"]* $option( |\")" <(sed -n "/^    $cmd)\$/,/^        opts=/p" <<<"$completion")
    expect 0 "" -- grep -qF -- "\\fB${option//-/\\-}\\fR" <<<"$man"
done < <("$bin" --list-options)
expect 0 "" -- test "$n_options" -gt 60
expect 0 "complete -F _hd_gpu hd-gpu" -- "$bin" --completion bash
expect 0 "" -- bash -n <(printf '%s\n' "$completion")
expect 0 "^\.TH HD-GPU 1" -- "$bin" --man
# The optimizer table: names and the Nesterov switch.
expect 0 "--optimizer NAME .*one of: adam sgd" -- "$bin" train --help
expect 2 "--optimizer 'adamw': expected one of: adam sgd" -- "$bin" train --optimizer adamw
expect 2 "--nesterov is for --optimizer sgd" -- "$bin" train --nesterov
expect 2 "--ema '1': expected a decay in \[0, 1\)" -- "$bin" train --ema 1
expect 2 "--nesterov needs a momentum above 0" -- "$bin" train --optimizer sgd --momentum 0 --nesterov
# A run directory where a model is asked for must hold best.safetensors.
mkdir -p "$tmp/no-model"
expect 1 "no-model: a directory without best.safetensors" -- "$bin" eval --model "$tmp/no-model" --device cpu --no-download
expect 1 "no-such-dir" -- "$bin" train --data "$tmp/no-such-dir" --no-download --device cpu
printf 'not a checkpoint' >"$tmp/bad.safetensors"
expect 1 "bad.safetensors" -- "$bin" eval --model "$tmp/bad.safetensors" --device cpu --no-download
# hd-gpu serve: usage and start-up errors (tests/serve_api_test.c serves requests).
expect 2 "^hd-gpu serve: --model FILE is required" -- "$bin" serve
expect 2 "--port '70000'" -- "$bin" serve --model x.safetensors --port 70000
expect 2 "unexpected argument 'extra'" -- "$bin" serve --model x.safetensors extra
expect 1 "^hd-gpu serve: --host 'localhost': expected an IPv4 or IPv6 address" -- "$bin" serve --model "$tmp/bad.safetensors" --host localhost
expect 1 "no-model: a directory without best.safetensors" -- "$bin" serve --model "$tmp/no-model" --device cpu
expect 1 "^hd-gpu serve: .*bad\.safetensors" -- "$bin" serve --model "$tmp/bad.safetensors" --device cpu --quiet
# hd-gpu summary: the layer table of a spec (default: the Keras MNIST CNN) or of a checkpoint.
expect 0 "^Total params: 225,034 \(879\.0 KiB as float32\)$" -- "$bin" summary
expect 0 "^dense1 \(Dense, ReLU\) +128 +204,928$" -- "$bin" summary
expect 0 "^Total params: 11,738 " -- "$bin" summary --model-spec conv:8:5,maxpool:2,flatten,dense:10
expect 1 "^hd-gpu summary: model spec: layer 1: dense needs a flat input" -- "$bin" summary --model-spec dense:10
expect 1 "^hd-gpu summary: .*bad\.safetensors" -- "$bin" summary --model "$tmp/bad.safetensors"
mkdir -p "$tmp/empty-run" # a run directory stands for its best.safetensors
expect 1 "^hd-gpu summary: .*empty-run: a directory without best\.safetensors" -- "$bin" summary --model "$tmp/empty-run"
expect 1 "no-such-run/best\.safetensors" -- "$bin" summary --model "$tmp/no-such-run/best.safetensors"
expect 2 "exclude each other" -- "$bin" summary --model-spec dense:10 --model "$tmp/bad.safetensors"
expect 2 "--model needs a value" -- "$bin" summary --model
expect 2 "unknown option .--bogus." -- "$bin" summary --bogus
# No GPU on this machine: --device 0 falls back with a one-line notice, or fails with --no-fallback.
if [ -n "${HD_TEST_DATA_DIR:-}" ] && [ -f "$HD_TEST_DATA_DIR/train-images-idx3-ubyte" ]; then
    if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi >/dev/null 2>&1; then
        expect 1 "no usable GPU.*--no-fallback" -- "$bin" train --device 0 --no-fallback --data "$HD_TEST_DATA_DIR" \
            --epochs 1 --train-limit 100 --run-dir "$tmp/r0"
        expect 0 "using the CPU backend" -- "$bin" train --device 0 --data "$HD_TEST_DATA_DIR" --epochs 1 \
            --train-limit 300 --test-limit 200 --no-report --run-dir "$tmp/r1"
        expect 0 "^Total params: 225,034 " -- "$bin" summary --model "$tmp/r1"
        # results.txt says what ended training: here the epoch cap; below, the target test accuracy.
        expect 0 "^ended_by: the epoch cap$" -- cat "$tmp/r1/results.txt"
        expect 0 "^finished: 20[0-9][0-9]-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9] UTC$" -- \
            cat "$tmp/r1/results.txt"
        expect 0 "time_to_accuracy_s=" -- "$bin" train --device cpu --data "$HD_TEST_DATA_DIR" --epochs 3 \
            --time-to-accuracy 0.01 --train-limit 300 --test-limit 200 --no-report --run-dir "$tmp/r2"
        expect 0 "^ended_by: the target test accuracy" -- cat "$tmp/r2/results.txt"
        # The fast preset: no validation split (no val_ figures, the last weights kept), inputs normalised by
        # the training images' statistics, which eval and predict take from the checkpoint: eval gives the
        # run's own test accuracy and loss.
        out=$("$bin" train --device cpu --data "$HD_TEST_DATA_DIR" --model-spec fast --train-limit 3000 \
            --no-report --run-dir "$tmp/r-fast" 2>&1)
        expect 0 "^no validation split: kept the last weights \(epoch 1\)$" -- printf '%s\n' "$out"
        expect 0 "^inputs normalised: \(x - 0\.1[0-9]+\) / 0\.3[0-9]+ " -- printf '%s\n' "$out"
        expect 1 "" -- grep -q "val_" <<<"$out"
        expect 0 "^lr_schedule: onecycle$" -- cat "$tmp/r-fast/settings.txt"
        expect 0 "^normalize: on$" -- cat "$tmp/r-fast/settings.txt"
        expect 0 "^validation_split: 0$" -- cat "$tmp/r-fast/settings.txt"
        fast_result=$(grep -oE "^test accuracy [0-9.]+% \(10000 images\), test loss [0-9.]+$" <<<"$out")
        expect 0 "^test accuracy" -- printf '%s\n' "$fast_result"
        expect 0 "" -- test "$("$bin" eval --model "$tmp/r-fast" --device cpu --data "$HD_TEST_DATA_DIR" |
            grep "^test accuracy")" = "$fast_result"
        expect 0 "one\.png: [0-9] \(" -- "$bin" predict --model "$tmp/r-fast" --device cpu "$(dirname "$0")/data/handdrawn/one.png"
        expect 0 "test accuracy" -- "$bin" eval --model "$tmp/r1/best.safetensors" --device cpu \
            --data "$HD_TEST_DATA_DIR"
        # predict through the real program (test_predict_command checks what it prints against the
        # model): a hand-drawn digit is classified, a missing file fails naming itself, the others still run.
        digits=$(dirname "$0")/data/handdrawn
        expect 0 "one\.png: [0-9] \([0-9.]+%\), [0-9] \([0-9.]+%\), [0-9] \([0-9.]+%\)( \[low confidence\])?$" -- \
            "$bin" predict --model "$tmp/r1/best.safetensors" --device cpu "$digits/one.png"
        expect 1 "no-such\.png: error: cannot open" -- "$bin" predict --model "$tmp/r1/best.safetensors" --device cpu \
            "$tmp/no-such.png" "$digits/seven.png"
        expect 1 "seven\.png: [0-9] \(" -- "$bin" predict --model "$tmp/r1/best.safetensors" --device cpu \
            "$tmp/no-such.png" "$digits/seven.png"
        expect 2 "no images given" -- "$bin" predict --model "$tmp/r1/best.safetensors"
        # A run directory where a model is asked for: its best.safetensors.
        expect 0 "^$tmp/r1/best.safetensors on cpu" -- "$bin" eval --model "$tmp/r1" --device cpu \
            --data "$HD_TEST_DATA_DIR"
        expect 0 "one\.png: [0-9] \(" -- "$bin" predict --model "$tmp/r1" --device cpu "$digits/one.png"
        # The device's notice comes once, after the arguments and files are checked, and not with --quiet.
        out=$("$bin" eval --model "$tmp/missing.safetensors" --device 0 --data "$HD_TEST_DATA_DIR" 2>&1)
        expect 0 "" -- test "$(head -n 1 <<<"$out")" = "hd-gpu: $tmp/missing.safetensors: cannot open: No such file or directory"
        expect 1 "" -- grep -q "no usable GPU" <<<"$out"
        out=$("$bin" predict --model "$tmp/r1" --device 0 "$tmp/no-such.png" 2>&1)
        expect 0 "" -- test "$out" = "$tmp/no-such.png: error: cannot open: No such file or directory"
        expect 0 "" -- test "$("$bin" eval --model "$tmp/r1" --device 0 --data "$HD_TEST_DATA_DIR" 2>&1 | grep -c "no usable GPU")" = 1
        expect 1 "" -- grep -q "no usable GPU" <("$bin" eval --model "$tmp/r1" --device 0 --quiet --data "$HD_TEST_DATA_DIR" 2>&1)
        expect 1 "" -- grep -q "no usable GPU" <("$bin" predict --model "$tmp/r1" --device 0 --quiet "$digits/one.png" 2>&1)
        # predict: - is an image on stdin, a directory its images in name order; errors get their line.
        expect 0 "^-: [0-9] \(" -- sh -c '"$1" predict --model "$2" --device cpu - <"$3"' sh "$bin" "$tmp/r1" "$digits/one.png"
        mkdir -p "$tmp/imgs"
        cp "$digits/seven.png" "$tmp/imgs/b.PNG"
        cp "$digits/one.png" "$tmp/imgs/a.png"
        printf 'not an image' >"$tmp/imgs/c.jpg"
        printf 'skipped' >"$tmp/imgs/notes.txt"
        out=$("$bin" predict --model "$tmp/r1" --device cpu "$tmp/imgs" 2>/dev/null)
        expect 0 "" -- test "$(cut -d: -f1 <<<"$out" | tr '\n' ' ')" = "$tmp/imgs/a.png $tmp/imgs/b.PNG $tmp/imgs/c.jpg "
        expect 0 "^$tmp/imgs/c\.jpg: error: " -- printf '%s\n' "$out"
        expect 1 "" -- "$bin" predict --model "$tmp/r1" --device cpu "$tmp/imgs"
        # JSON: all the classes' probabilities (summing to 1), each error once (not also on stderr).
        "$bin" predict --model "$tmp/r1" --device cpu --json "$tmp/imgs" >"$tmp/p.json" 2>"$tmp/p.err"
        expect 0 "" -- test ! -s "$tmp/p.err"
        expect 0 "" -- python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 3 and "error" in lines[2] and "probabilities" not in lines[2], lines
for l in lines[:2]:
    p = l["probabilities"]
    assert len(p) == 10 and abs(sum(p) - 1) < 1e-9 and l["class"] == max(range(10), key=p.__getitem__), l
    assert l["top3"][0]["class"] == l["class"] and l["probability"] == p[l["class"]], l
    assert l["low_confidence"] == (l["probability"] < 0.5), l
' "$tmp/p.json"
        # Low confidence: flagged under the threshold, in text and in JSON.
        expect 0 "one\.png: .*\) \[low confidence\]$" -- "$bin" predict --model "$tmp/r1" --device cpu \
            --low-confidence 1 "$digits/one.png"
        expect 0 "\"low_confidence\": true" -- "$bin" predict --model "$tmp/r1" --device cpu --json \
            --low-confidence 1 "$digits/one.png"
        expect 0 "\"low_confidence\": false" -- "$bin" predict --model "$tmp/r1" --device cpu --json \
            --low-confidence 0 "$digits/one.png"
        # --save-preprocessed: the 28x28 images the model saw.
        expect 0 "" -- "$bin" predict --model "$tmp/r1" --device cpu --save-preprocessed "$tmp/seen" \
            "$digits/one.png" "$digits/seven.png"
        expect 0 "" -- python3 -c '
import struct, sys
for f in sys.argv[1:]:
    head = open(f, "rb").read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (28, 28), f
' "$tmp/seen/one.png" "$tmp/seen/seven.png"
        # --nesterov takes effect: recorded in settings.txt and the checkpoint, and the weights differ.
        for nesterov in "" --nesterov; do
            "$bin" train --device cpu --data "$HD_TEST_DATA_DIR" --epochs 1 --train-limit 300 --test-limit 100 \
                --no-report --quiet --optimizer sgd $nesterov --run-dir "$tmp/sgd$nesterov" >/dev/null 2>&1
        done
        expect 0 "^nesterov: off$" -- cat "$tmp/sgd/settings.txt"
        expect 0 "^nesterov: on$" -- cat "$tmp/sgd--nesterov/settings.txt"
        expect 0 '"hd.optimizer.nesterov":"1"' -- grep -ao '"hd.optimizer.nesterov":"[01]"' "$tmp/sgd--nesterov/last.safetensors"
        expect 0 '"hd.optimizer.nesterov":"0"' -- grep -ao '"hd.optimizer.nesterov":"[01]"' "$tmp/sgd/last.safetensors"
        expect 1 "differ" -- cmp "$tmp/sgd/last.safetensors" "$tmp/sgd--nesterov/last.safetensors"
        # The run was trained with --no-report: `hd-gpu report` draws it from the run's files,
        # evaluating on the data directory recorded in settings.txt. A build without cairo
        # (the optional plots off) says so and fails.
        if "$bin" --version | grep -q "no plots"; then
            expect 1 "built without cairo" -- "$bin" report "$tmp/r1" --device cpu
        else
            expect 0 "wrote .*report.html" -- "$bin" report "$tmp/r1" --device cpu
            for f in report.html history.png confusion.png misclassified.png filters.png; do
                expect 0 "" -- test -s "$tmp/r1/$f"
            done
        fi
        expect 1 "no-such-run" -- "$bin" report "$tmp/no-such-run" --device cpu
        # Transfer learning: r1 (10 MNIST classes) fine-tuned onto a 5-class set, conv frozen, with names.
        python3 - "$tmp" <<'PY'
import os, random, struct, sys
random.seed(7)
def write(d, prefix, n, classes, side=28, bad_label=None):
    os.makedirs(d, exist_ok=True)
    images, labels = bytearray(), bytearray()
    for i in range(n):
        c = i % classes
        labels.append(c)
        images += bytes(200 if (x * classes) // side == c else random.randrange(40)
                        for y in range(side) for x in range(side))
    if bad_label is not None:
        labels[3] = bad_label
    open(f"{d}/{prefix}-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, side, side) + images)
    open(f"{d}/{prefix}-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + labels)
t = sys.argv[1]
write(t + "/five", "train", 200, 5); write(t + "/five", "t10k", 50, 5)
write(t + "/five-bad", "train", 200, 5); write(t + "/five-bad", "t10k", 50, 5, bad_label=7)
write(t + "/small", "train", 50, 5, side=14); write(t + "/small", "t10k", 10, 5, side=14)
PY
        printf 'zero\none\ntwo\nthree\nfour\n' >"$tmp/five.txt"
        printf 'zero\none\n' >"$tmp/two.txt"
        expect 2 "--init starts a new one" -- "$bin" train --resume "$tmp/r1" --init "$tmp/r1"
        expect 2 "^hd-gpu train: --freeze 'conv,bogus': 'bogus' is neither a layer kind" -- "$bin" train --freeze conv,bogus
        expect 2 "--num-classes '1'" -- "$bin" train --num-classes 1
        out=$("$bin" train --device cpu --data "$tmp/five" --epochs 2 --no-report --init "$tmp/r1" --freeze conv \
            --class-names "$tmp/five.txt" --run-dir "$tmp/ft" 2>&1)
        expect 0 "^  dense2\.weight +\[5, 128\] +\[10, 128\] +shape differs \(fresh\)$" -- printf '%s\n' "$out"
        expect 0 "^  conv2\.weight +\[64, 32, 3, 3\] +\[64, 32, 3, 3\] +loaded$" -- printf '%s\n' "$out"
        expect 0 "^frozen \(--freeze conv\): conv1,conv2; backward stops at dense1$" -- printf '%s\n' "$out"
        expect 0 "^classes: 0 zero, 1 one, 2 two, 3 three, 4 four$" -- cat "$tmp/ft/results.txt"
        expect 0 "^freeze: conv$" -- cat "$tmp/ft/settings.txt"
        expect 0 "dense:5$" -- sed -n 's/^model: //p' "$tmp/ft/settings.txt"
        expect 0 "one\.png: [0-4] (zero|one|two|three|four) \(" -- "$bin" predict --model "$tmp/ft" --device cpu "$digits/one.png"
        expect 0 "^classes: 0 zero" -- "$bin" eval --model "$tmp/ft" --device cpu --data "$tmp/five"
        out=$("$bin" export --model "$tmp/ft" -o "$tmp/ft.onnx" 2>&1)
        grep -q "built without" <<<"$out" || expect 0 "output logits \[N, 5\]" -- printf '%s\n' "$out"
        # Bad inputs: one line, exit 1, no run directory made.
        for case in "five-bad|t10k-images-idx3-ubyte: the label of image 3 is 7, outside the model's 5 classes|" \
            "five|bad\.safetensors|--init $tmp/bad.safetensors" \
            "five|no-model: a directory without best\.safetensors|--init $tmp/no-model" \
            "small|takes 1x28x28 images, the training images are 1x14x14|--init $tmp/r1" \
            "five|no tensor matches|--init $tmp/r1 --model-spec conv:4:5:relu,flatten,dense:5" \
            "five|two\.txt: 2 class names, but the model has 5 classes|--class-names $tmp/two.txt" \
            "five|--freeze: '9' is past the model's 8 layers|--freeze 9" \
            "five|leaving nothing to train|--freeze conv,dense"; do
            IFS='|' read -r data says extra <<<"$case"
            out=$("$bin" train --device cpu --data "$tmp/$data" --epochs 1 --no-report --run-dir "$tmp/rb" $extra 2>&1)
            rc=$?
            expect 0 "" -- test "$rc" = 1 -a "$(grep -c "^hd-gpu: " <<<"$out")" = 1
            expect 0 "^hd-gpu: .*$says" -- printf '%s\n' "$out"
            expect 1 "" -- test -e "$tmp/rb"
        done
    fi
fi
finish
