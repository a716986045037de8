#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries (initdb, pg_ctl, postgres) that the test suite's
# throw-away servers need (tests/postgres.py) are on this machine.
#
# - Already there (Debian's /usr/lib/postgresql/<version>/bin, or all three on PATH): says nothing.
# - Missing, running as root with apt-get: installs Debian's `postgresql` package, timed.
# - Missing otherwise: prints one line on how to install it and exits 0; the tests that need a
#   server are then skipped with that reason (or fail, when CI is set: see tests/conftest.py).
#
# Idempotent; safe to run before every test run. Exits non-zero only when an install was
# attempted under CI and failed.
set -euo pipefail

have_server_binaries() {
    local bindir
    for bindir in /usr/lib/postgresql/*/bin; do
        if [[ -x $bindir/initdb && -x $bindir/pg_ctl && -x $bindir/postgres ]]; then
            return 0
        fi
    done
    command -v initdb >/dev/null && command -v pg_ctl >/dev/null && command -v postgres >/dev/null
}

is_ci() {
    case "${CI:-}" in
        "" | 0 | false | False | FALSE | no) return 1 ;;
        *) return 0 ;;
    esac
}

say() { echo "ensure-postgres: $*"; }

if have_server_binaries; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    if command -v apt-get >/dev/null; then
        say "PostgreSQL server not found; install it with 'sudo apt-get install postgresql'" \
            "(tests that need it are skipped until then)."
    else
        say "PostgreSQL server not found (no initdb/pg_ctl/postgres); install PostgreSQL's" \
            "server package (tests that need it are skipped until then)."
    fi
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
install_server() {
    apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 postgresql
}

say "PostgreSQL server not found; installing Debian's postgresql package..."
start=$(date +%s)
# `apt-get update` only when the package lists don't know the package, or when installing from
# them fails (a stale list names package versions that the mirror no longer has).
if apt-cache show postgresql >/dev/null 2>&1 && install_server; then
    :
elif apt-get update -qq && install_server; then
    :
else
    say "installing PostgreSQL failed (see apt-get's output above)."
    if is_ci; then
        exit 1
    fi
    say "tests that need PostgreSQL are skipped."
    exit 0
fi
say "installed PostgreSQL in $(($(date +%s) - start)) s."

if ! have_server_binaries; then
    say "the postgresql package installed, but initdb/pg_ctl/postgres are still missing."
    if is_ci; then
        exit 1
    fi
    exit 0
fi

# Debian's package creates a default cluster and, where services may start, starts it on port
# 5432. The tests never use it (they start their own servers on free ports), so it is harmless.
if command -v pg_lsclusters >/dev/null && pg_lsclusters --no-header 2>/dev/null | grep -qw online; then
    say "note: the package started its default cluster (see pg_lsclusters); the tests do not" \
        "use it. Stop it with 'pg_ctlcluster <version> main stop' if you do not want it."
fi
