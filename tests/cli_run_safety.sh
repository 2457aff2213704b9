#!/usr/bin/env bash
# cli_run_safety.sh: a user's runs and data kept safe, through the real program (issue "Everyday use"):
# images of the wrong size refused by train and eval, evaluation from the test files alone, a run
# directory that holds a run refused (and replaced with --overwrite), a second training into a locked
# one refused naming the holder, a resumed run's settings kept, and Ctrl-C / SIGTERM saving the run with
# the command that resumes it. Usage: cli_run_safety.sh PATH/TO/hd-gpu (needs MNIST in $HD_TEST_DATA_DIR).
set -u
bin=$1
data=${HD_TEST_DATA_DIR:-}
if [ -z "$data" ] || [ ! -f "$data/train-images-idx3-ubyte" ]; then
    echo "skipped: no MNIST in HD_TEST_DATA_DIR" >&2
    exit 77
fi
tmp=$(mktemp -d)
pids=()
. "$(dirname "$0")/test_util/expect.sh"
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

# Waits (at most 60 s) until FILE holds PATTERN.
wait_for() {
    for _ in $(seq 600); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
# An IDX pair of COUNT SIDExSIDE random images (labels 0..9 cycling) as DIR's test set.
write_test_set() {
    local dir=$1 count=$2 side=$3
    mkdir -p "$dir"
    { printf '\x00\x00\x08\x03'; be32 "$count"; be32 "$side"; be32 "$side"; head -c $((count * side * side)) /dev/urandom; } \
        >"$dir/t10k-images-idx3-ubyte"
    { printf '\x00\x00\x08\x01'; be32 "$count"; for ((i = 0; i < count; i++)); do printf "\\x0$((i % 10))"; done; } \
        >"$dir/t10k-labels-idx1-ubyte"
}
train=("$bin" train --device cpu --quiet --no-report)

# 1. A test set of 32x32 images beside a 28x28 training set: refused naming the file and both shapes,
#    by train and by eval (at a batch size where the copy used to run past the input buffer).
mkdir -p "$tmp/d32"
ln -s "$data/train-images-idx3-ubyte" "$data/train-labels-idx1-ubyte" "$tmp/d32/"
write_test_set "$tmp/d32" 300 32
expect 1 "t10k-images-idx3-ubyte: images are 1x32x32, but the model takes 1x28x28" -- \
    "${train[@]}" --data "$tmp/d32" --epochs 1 --train-limit 300 --run-dir "$tmp/r32"
expect 0 "" -- "${train[@]}" --data "$data" --epochs 1 --train-limit 600 --test-limit 200 --run-dir "$tmp/r"
expect 1 "t10k-images-idx3-ubyte: images are 1x32x32, but the model takes 1x28x28" -- \
    "$bin" eval --model "$tmp/r/best.safetensors" --data "$tmp/d32" --batch-size 128 --device cpu
expect 1 "t10k-images-idx3-ubyte: images are 1x32x32" -- \
    "$bin" eval --model "$tmp/r/best.safetensors" --data "$tmp/d32" --device cpu

# A data directory whose path is not UTF-8 cannot be recorded in a checkpoint: said before any work.
mkdir -p "$tmp/$(printf 'bad\xff')"
expect 2 "the path is not UTF-8" -- "${train[@]}" --data "$tmp/$(printf 'bad\xff')" --run-dir "$tmp/r-utf8"

# 2. eval needs only the test files.
mkdir -p "$tmp/t10k-only"
ln -s "$data/t10k-images-idx3-ubyte" "$data/t10k-labels-idx1-ubyte" "$tmp/t10k-only/"
expect 0 "test accuracy" -- "$bin" eval --model "$tmp/r/best.safetensors" --data "$tmp/t10k-only" --device cpu

# 3. A directory holding a run is refused, and its files are untouched; --overwrite replaces the run.
before=$(cksum <"$tmp/r/last.safetensors")
expect 1 "holds a run already.*--resume .*--overwrite" -- \
    "${train[@]}" --data "$data" --epochs 1 --train-limit 600 --run-dir "$tmp/r"
[ "$(cksum <"$tmp/r/last.safetensors")" = "$before" ] && ok || bad "a refused run changed last.safetensors"
expect 2 "give one" -- "${train[@]}" --resume "$tmp/r" --overwrite
expect 0 "" -- "${train[@]}" --data "$data" --epochs 1 --train-limit 700 --test-limit 200 --run-dir "$tmp/r" \
    --overwrite
grep -q "^train_limit: 700$" "$tmp/r/settings.txt" && ok || bad "--overwrite: settings.txt is not the new run's"

# 4. --resume keeps the run's data, split and length; a contradicting flag is refused; --epochs extends.
expect 1 "--batch-size 64 contradicts the run being resumed, which has batch 128" -- \
    "${train[@]}" --resume "$tmp/r" --batch-size 64
expect 1 "--train-limit 900 contradicts" -- "${train[@]}" --resume "$tmp/r" --train-limit 900
HD_DATA_DIR=$tmp/no-such-dir expect 0 "" -- "${train[@]}" --resume "$tmp/r" --epochs 2 # the run's recorded --data
[ "$(grep -c '^[0-9]' "$tmp/r/metrics.csv")" = 2 ] && ok || bad "--epochs 2 did not extend the run to 2 epochs"
grep -q "^epochs: 2$" "$tmp/r/settings.txt" && ok || bad "settings.txt does not record --epochs 2"
expect 0 "" -- "${train[@]}" --resume "$tmp/r" # done: evaluates again, trains no more
[ "$(grep -c '^[0-9]' "$tmp/r/metrics.csv")" = 2 ] && ok || bad "a resume without --epochs went past the run's 2"

# 5. Ctrl-C mid-epoch: the step finishes, last.safetensors is saved, one line says how to resume; exit 130.
long=("$bin" train --device cpu --no-report --data "$data" --epochs 2 --train-limit 8000 --test-limit 500)
"${long[@]}" --run-dir "$tmp/int" >"$tmp/int.out" 2>"$tmp/int.err" &
pid=$!
pids+=("$pid")
if wait_for "$tmp/int.out" "^training on"; then
    sleep 0.5
    kill -INT "$pid"
    wait "$pid"
    rc=$?
    [ "$rc" = 130 ] && ok || bad "Ctrl-C: exit $rc, expected 130"
    grep -qE "continue it with: hd-gpu train --resume $tmp/int\$" "$tmp/int.err" && ok ||
        bad "Ctrl-C: no resume command in: $(cat "$tmp/int.err")"
    # In epoch 1 after some batch, unless this machine trained the whole epoch in half a second.
    expect 0 "resuming .* (in epoch [0-9]+ after batch [0-9]+|after epoch)" -- "${long[@]}" --resume "$tmp/int"
    [ "$(grep -c '^[0-9]' "$tmp/int/metrics.csv")" = 2 ] && ok || bad "the resumed run did not finish its 2 epochs"
else
    bad "training did not start: $(cat "$tmp/int.err")"
fi

# 6. A second training into a directory in use fails at once, naming the first one's process; SIGTERM
#    stops the first as Ctrl-C does (exit 143 = 128 + SIGTERM).
"${long[@]}" --run-dir "$tmp/lock" >"$tmp/lock.out" 2>"$tmp/lock.err" &
pid=$!
pids+=("$pid")
if wait_for "$tmp/lock.out" "^training on"; then
    expect 1 "in use by another training \(process $pid\)" -- "${train[@]}" --data "$data" --run-dir "$tmp/lock" \
        --overwrite
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    [ "$rc" = 143 ] && ok || bad "SIGTERM: exit $rc, expected 143"
else
    bad "training did not start: $(cat "$tmp/lock.err")"
fi

# 7. A second stop signal while the first is handled ends the program at once, by that signal, without the
#    first one's save; what it leaves loads (or is not there yet). Two `kill -INT` back to back may reach the
#    process as one signal (the first still pending), so the program is stopped, sent SIGINT and then
#    SIGTERM (two different signals are both kept pending), and continued: it takes both at once.
"${long[@]}" --run-dir "$tmp/twice" >"$tmp/twice.out" 2>"$tmp/twice.err" &
pid=$!
pids+=("$pid")
if wait_for "$tmp/twice.out" "^training on"; then
    kill -STOP "$pid"
    state() { sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1; } # after "PID (NAME) " in /proc/PID/stat
    for _ in $(seq 100); do
        [ "$(state)" = T ] && break
        sleep 0.1
    done
    [ "$(state)" = T ] && ok || bad "two stop signals: SIGSTOP did not stop the training (state $(state))"
    kill -INT "$pid"
    kill -TERM "$pid"
    kill -CONT "$pid"
    wait "$pid"
    rc=$?
    # Ended by SIGINT or SIGTERM (whichever the second handler took), before the first one's stop could
    # save the run and print the command that resumes it.
    [ "$rc" = 130 ] || [ "$rc" = 143 ] && ok || bad "two stop signals: exit $rc, expected 130 or 143"
    if grep -q "continue it with" "$tmp/twice.err"; then
        bad "two stop signals: the run stopped as after one: $(cat "$tmp/twice.err")"
    else
        ok
    fi
    if [ -e "$tmp/twice/last.safetensors" ]; then
        expect 0 "test accuracy" -- "$bin" eval --model "$tmp/twice/last.safetensors" --data "$data" --device cpu
    fi
else
    bad "training did not start: $(cat "$tmp/twice.err")"
fi

finish
