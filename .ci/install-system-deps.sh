#!/bin/sh
# Install the system packages the integration tests need (git servers, a browser); idempotent.
#
#   openssh-server  /usr/sbin/sshd for the ssh:// and scp-like remotes
#   openssh-client  ssh and ssh-keygen (key pairs for the test server)
#   git             git daemon (git://) and git http-backend (smart http://)
#   chromium        the browser the dashboard's tests drive (headless)
#   chromium-driver chromedriver, through which Selenium drives it
#
# Runs non-interactively as root (CI containers); does nothing when all are present.
set -eu

missing=""
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }

have /usr/sbin/sshd || missing="$missing openssh-server"
have ssh-keygen || missing="$missing openssh-client"
{ have git && [ -x "$(git --exec-path 2>/dev/null)/git-http-backend" ] \
    && [ -x "$(git --exec-path 2>/dev/null)/git-daemon" ]; } || missing="$missing git"
have chromium || have /usr/bin/chromium || missing="$missing chromium"
have chromedriver || have /usr/bin/chromedriver || missing="$missing chromium-driver"

if [ -z "$missing" ]; then
    echo "install-system-deps: nothing to install"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-system-deps: need root to install:$missing" >&2
        exit 1
    fi
else
    SUDO=""
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-system-deps: installing$missing"
$SUDO apt-get update -q
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO apt-get install -y -q --no-install-recommends $missing
