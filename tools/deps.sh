# deps.sh: sourced by the tool scripts. ensure_packages PURPOSE PKG... checks
# that Debian/Ubuntu packages are installed and installs the missing ones
# through apt-get when run as root; otherwise it prints the exact apt-get
# line and stops. "a|b" means the first of a, b that apt knows.

_apt_updated=0

_pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

_pkg_known() {
    [ -n "$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^  Candidate: //p' | grep -v '(none)')" ]
}

_apt_update_once() {
    if [ "$_apt_updated" = 0 ]; then
        apt-get update -qq >/dev/null
        _apt_updated=1
    fi
}

# Resolve "a|b|c" to the first installed or installable name.
_pkg_pick() {
    local alt IFS='|'
    for alt in $1; do
        if _pkg_installed "$alt"; then echo "$alt"; return; fi
    done
    for alt in $1; do
        if _pkg_known "$alt"; then echo "$alt"; return; fi
    done
    [ "$(id -u)" = 0 ] && _apt_update_once
    for alt in $1; do
        if _pkg_known "$alt"; then echo "$alt"; return; fi
    done
    echo "${1%%|*}"
}

ensure_packages() {
    local purpose=$1; shift
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "note: not a Debian/Ubuntu system; make sure these are installed for $purpose: $*" >&2
        return 0
    fi
    local missing=() spec name
    for spec in "$@"; do
        name=$(_pkg_pick "$spec")
        _pkg_installed "$name" || missing+=("$name")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "Missing packages for $purpose. Install them with:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "Installing for $purpose: ${missing[*]}"
    _apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# What building the host programs needs.
BUILD_PACKAGES=(cmake make gcc libc6-dev libcivetweb-dev libssl-dev)
# What the test suite adds: clang with sanitizers and libFuzzer, and the real
# peers the interop tests talk to.
TEST_PACKAGES=(clang "libclang-rt-dev|libclang-rt-14-dev|libclang-rt-15-dev" usbip tshark
               procps chromium python3-prometheus-client)
