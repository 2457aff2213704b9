#!/usr/bin/env bash
# install_test.sh: `cmake --install BUILD_DIR` puts hd-gpu, its man page and its bash completion under
# the prefix (GNUInstallDirs), and the installed program runs. Usage: install_test.sh BUILD_DIR
set -u
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() {
    echo "FAIL: $*" >&2
    failed=1
}
DESTDIR="$tmp" cmake --install "$build" --prefix /opt/hd >"$tmp/install.log" 2>&1 || fail "cmake --install: $(tail -3 "$tmp/install.log")"
root="$tmp/opt/hd"
[ -x "$root/bin/hd-gpu" ] || fail "no $root/bin/hd-gpu"
libdir_man=$(find "$root" -path '*/man/man1/hd-gpu.1' | head -n 1)
[ -s "$root/share/man/man1/hd-gpu.1" ] || fail "no man page at share/man/man1/hd-gpu.1 (found: ${libdir_man:-none})"
[ -s "$root/share/bash-completion/completions/hd-gpu" ] || fail "no share/bash-completion/completions/hd-gpu"
"$root/bin/hd-gpu" --version | grep -qE '^hd-gpu [0-9]+\.[0-9]+' || fail "the installed hd-gpu --version"
# The installed program finds its libraries where the tested one does: every directory of the build
# tree's run path outside the build tree (cuDNN where cmake found it, e.g. PyTorch's wheel, which the
# loader's cache may not list) is in the installed one's too.
runpath() { readelf -d "$1" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]$/\2/p'; } # DT_RUNPATH or DT_RPATH
if ! command -v readelf >/dev/null; then
    echo "install_test: no readelf (binutils): the run-path check is skipped"
else
    installed=":$(runpath "$root/bin/hd-gpu"):"
    IFS=: read -ra dirs <<<"$(runpath "$build/hd-gpu")"
    for dir in "${dirs[@]}"; do
        case $dir in "" | "$(cd "$build" && pwd)"*) continue ;; esac
        [[ $installed == *":$dir:"* ]] || fail "the installed hd-gpu's run path ($installed) lacks $dir"
    done
fi
grep -q '^\.TH HD-GPU 1' "$root/share/man/man1/hd-gpu.1" || fail "the man page has no .TH line"
# The installed completion completes: `hd-gpu tr<TAB>` gives train, `train --epo<TAB>` gives --epochs.
out=$(bash -c 'source "$1"; COMP_WORDS=(hd-gpu tr); COMP_CWORD=1; _hd_gpu; echo "${COMPREPLY[*]}";
               COMP_WORDS=(hd-gpu train --epo); COMP_CWORD=2; _hd_gpu; echo "${COMPREPLY[*]}"' \
    sh "$root/share/bash-completion/completions/hd-gpu")
[ "$out" = $'train\n--epochs' ] || fail "completion gave '$out'"
[ "$failed" = 0 ] && echo "installed and ran under $root"
exit "$failed"
