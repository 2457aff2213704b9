# expect.sh: what the shell tests share (sourced): counters, one check of a command's exit code and
# output, and the closing line. A test sets nothing before sourcing it.
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { # bad MESSAGE: one failure, said on stderr
    failed=$((failed + 1))
    echo "FAIL: $*" >&2
}
expect() { # expect CODE PATTERN -- command...: the command exits CODE and its output matches PATTERN
    local code=$1 pattern=$2 out rc
    shift 3
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" = "$code" ] && grep -qE -- "$pattern" <<<"$out"; then
        ok
    else
        bad "'$*' exited $rc (expected $code), output did not match /$pattern/:"
        head -5 <<<"$out" >&2
    fi
}
finish() { # the closing line ('N passed, N failed'), and the status
    echo "${1:+$1: }$passed passed, $failed failed"
    [ "$failed" = 0 ]
}
