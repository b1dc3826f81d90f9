#!/usr/bin/env bash
# Prepare this checkout to run Trunkline: a virtualenv in .venv with the pinned dependencies.
#   scripts/bootstrap.sh           runtime only (for `make up`)
#   scripts/bootstrap.sh --dev     plus test/lint tools and the system packages the tests drive
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $*" >&2; return 1; fi
}

apt_updated=0
ensure_apt() {  # ensure_apt COMMAND PACKAGE: install PACKAGE when COMMAND is missing
    command -v "$1" >/dev/null 2>&1 && return 0
    apt_install "$1" "$2"
}

ensure_apt_file() {  # ensure_apt_file GLOB PACKAGE: install PACKAGE when no file matches GLOB
    compgen -G "$1" >/dev/null && return 0
    apt_install "$1" "$2"
}

apt_install() {  # apt_install WHAT-IS-MISSING PACKAGE
    if ! command -v apt-get >/dev/null; then
        echo "missing $1 and no apt-get to install $2; install it by hand" >&2; return 1
    fi
    if [[ $apt_updated -eq 0 ]]; then as_root apt-get update -qq; apt_updated=1; fi
    echo "installing system package $2" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

pick_python() {
    for candidate in python3.11 python3.12 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))'; then
            echo "$candidate"; return 0
        fi
    done
    echo "Trunkline needs Python 3.11 or 3.12" >&2; return 1
}

if [[ $dev -eq 1 ]]; then
    ensure_apt turnserver coturn          # relay-credential tests run a real TURN server
    ensure_apt redis-server redis-server  # integration tests; CI starts it when down
    ensure_apt pg_ctlcluster postgresql
    ensure_apt node nodejs                # the test SMSC (tests/smsc) runs on node-smpp
    ensure_apt npm npm
    ensure_apt wrk wrk                    # bench/api.py loads the API with it
    ensure_apt sipp sip-tester            # the SIP worker tests use SIPp as the carrier
    ensure_apt kamailio kamailio          # the SIP edge in front of the worker pool (tests/sip)
    # SIP TLS at the edge: Kamailio's tls module (tests/sip/test_kamailio_tls.py)
    ensure_apt_file '/usr/lib/*/kamailio/modules/tls.so' kamailio-tls-modules
    ensure_apt chromium chromium          # the operator console tests drive a headless browser
    ensure_apt espeak-ng espeak-ng        # text and SSML play sources are spoken with it (and tested)
elif ! command -v espeak-ng >/dev/null 2>&1; then
    # The runtime path installs no system packages; production needs this one for speech.
    echo "note: espeak-ng is not installed: text and SSML play sources will fail with PlayFailed" \
        "(Debian: apt-get install espeak-ng; docs/calls.md, Play sources)" >&2
fi

if [[ ! -x .venv/bin/python ]]; then
    "$(pick_python)" -m venv .venv
fi
stamp=.venv/.trunkline-installed
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-$dev"
if [[ ! -f $stamp || "$(cat $stamp)" != "$want" ]]; then
    .venv/bin/python -m pip install -q --upgrade pip
    if [[ $dev -eq 1 ]]; then
        .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
    else
        .venv/bin/python -m pip install -q -c constraints.txt -e .
    fi
    echo "$want" > $stamp
fi

if [[ $dev -eq 1 ]]; then
    # The test SMSC's npm packages, from its lock file; again whenever the lock changes.
    smsc_stamp=tests/smsc/node_modules/.trunkline-installed
    smsc_want="$(sha256sum tests/smsc/package-lock.json | cut -c1-16)"
    if [[ ! -f $smsc_stamp || "$(cat $smsc_stamp)" != "$smsc_want" ]]; then
        npm ci --prefix tests/smsc --no-audit --no-fund --loglevel=error
        echo "$smsc_want" > $smsc_stamp
    fi
fi
