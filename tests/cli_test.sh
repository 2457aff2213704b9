#!/usr/bin/env bash
# cli_test.sh: the hd-gpu program's exit codes (0 ok, 1 runtime error, 2 usage error) and
# one-line messages, end to end. Usage: cli_test.sh PATH/TO/hd-gpu
set -u
bin=$1
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() { # expect CODE PATTERN -- command...
    local code=$1 pattern=$2
    shift 3
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" = "$code" ] && grep -qE -- "$pattern" <<<"$out"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: '$*' exited $rc (expected $code), output did not match /$pattern/:" >&2
        head -5 <<<"$out" >&2
    fi
}

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
expect 1 "no-such-dir" -- "$bin" train --data "$tmp/no-such-dir" --no-download --device cpu
printf 'not a checkpoint' >"$tmp/bad.safetensors"
expect 1 "bad.safetensors" -- "$bin" eval --model "$tmp/bad.safetensors" --device cpu --no-download
# No GPU on this machine: --device 0 falls back with a one-line notice, or fails with --no-fallback.
if [ -n "${HD_TEST_DATA_DIR:-}" ] && [ -f "$HD_TEST_DATA_DIR/train-images-idx3-ubyte" ]; then
    if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi >/dev/null 2>&1; then
        expect 1 "no usable GPU.*--no-fallback" -- "$bin" train --device 0 --no-fallback --data "$HD_TEST_DATA_DIR" \
            --epochs 1 --train-limit 100 --run-dir "$tmp/r0"
        expect 0 "using the CPU backend" -- "$bin" train --device 0 --data "$HD_TEST_DATA_DIR" --epochs 1 \
            --train-limit 300 --test-limit 200 --no-report --run-dir "$tmp/r1"
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
    fi
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
