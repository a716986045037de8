#!/usr/bin/env bash
# Make sure the Debian packages the test suite's real components need are on this machine:
# PostgreSQL's server (tests/postgres.py starts throw-away servers from it) and a node's
# runtime (tests/node.py: containerd, runc, the CNI plugins, iptables, iproute2).
#
# - All installed already: says nothing.
# - Some missing, running as root with apt-get: installs them, timed.
# - Missing otherwise: prints one line on how to install them and exits 0; the tests that need
#   them are then skipped with that reason (or fail, when CI is set: see tests/conftest.py and
#   tests/e2e/conftest.py).
#
# Idempotent; safe to run before every test run. Exits non-zero only when an install was
# attempted under CI and failed.
set -euo pipefail

PACKAGES=(postgresql containerd runc containernetworking-plugins iptables iproute2)

is_ci() {
    case "${CI:-}" in
        "" | 0 | false | False | FALSE | no) return 1 ;;
        *) return 0 ;;
    esac
}

say() { echo "ensure-packages: $*"; }

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
if command -v dpkg-query >/dev/null; then
    for package in "${PACKAGES[@]}"; do
        installed "$package" || missing+=("$package")
    done
fi
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    say "missing Debian packages: ${missing[*]}; install them with" \
        "'sudo apt-get install ${missing[*]}' (tests that need them are skipped until then)."
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
install_missing() {
    apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"
}

say "installing Debian's ${missing[*]}..."
start=$(date +%s)
# `apt-get update` only when the package lists don't know a package, or when installing from
# them fails (a stale list names package versions that the mirror no longer has).
if apt-cache show "${missing[@]}" >/dev/null 2>&1 && install_missing; then
    :
elif apt-get update -qq && install_missing; then
    :
else
    say "installing ${missing[*]} failed (see apt-get's output above)."
    if is_ci; then
        exit 1
    fi
    say "tests that need them are skipped."
    exit 0
fi
say "installed ${missing[*]} in $(($(date +%s) - start)) s."

# Debian's postgresql package creates a default cluster and, where services may start, starts
# it on port 5432. The tests never use it (they start their own servers on free ports).
if command -v pg_lsclusters >/dev/null && pg_lsclusters --no-header 2>/dev/null | grep -qw online; then
    say "note: the postgresql package started its default cluster (see pg_lsclusters); the" \
        "tests do not use it. Stop it with 'pg_ctlcluster <version> main stop' if you wish."
fi
