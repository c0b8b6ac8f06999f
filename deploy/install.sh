#!/bin/bash
# Installs or upgrades the Intake server on Debian 12, as root:
#
#   deploy/install.sh            install or upgrade; safe to run again
#   deploy/install.sh --dry-run  print each step, change nothing
#
# It installs tor and the system packages from Debian, makes the system user
# "intake", a root-owned virtualenv in /opt/intake holding exactly what
# requirements/server.txt pins (each package checked against its hash), the
# data folder
# /var/lib/intake (0700), the settings in /etc/intake, the systemd units and
# the torrc, then prints the onion addresses. See docs/operations.md.
set -euo pipefail

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

SERVICE_USER=intake
PREFIX=/opt/intake
VENV=$PREFIX/venv
DATA_DIR=/var/lib/intake
ETC=/etc/intake
UNIT_DIR=/etc/systemd/system
TORRC=/etc/tor/torrc
TOR_DATA=/var/lib/tor

step() { printf '\n== %s\n' "$*"; }
# Every change goes through run: in a dry run it is only printed.
run() {
  printf '+ %s\n' "$*"
  if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}
note() { printf '   %s\n' "$*"; }

if [ "$DRY_RUN" = 1 ]; then
  echo "Dry run: printing the steps, changing nothing."
elif [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (or try --dry-run)" >&2
  exit 1
fi

step "Check the system"
if [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ] && [ "${VERSION_ID:-}" = 12 ]; then
  note "Debian 12: ok"
else
  note "warning: made for Debian 12, this is ${PRETTY_NAME:-an unknown system}"
fi
if [ -n "$(tail -n +2 /proc/swaps 2>/dev/null)" ]; then
  note "warning: swap is on. The services forbid their own memory from swap"
  note "(MemorySwapMax=0), but keep swap off or encrypted (docs/operations.md)."
fi

step "Install tor and the system packages from Debian"
PACKAGES="tor python3 python3-venv ca-certificates $(grep -v '^#' "$SOURCE/deploy/packages-server.txt" | tr '\n' ' ')"
run apt-get update -qq
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES

step "Make the system user $SERVICE_USER"
if id -u "$SERVICE_USER" >/dev/null 2>&1; then
  note "user $SERVICE_USER exists"
else
  run adduser --system --group --home "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
fi

step "Make the data folder $DATA_DIR (0700, $SERVICE_USER only)"
run install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$DATA_DIR"
run chmod 0700 "$DATA_DIR"

step "Copy the project to $PREFIX/src and install it in a virtualenv, from the hashed lock"
run install -d -m 0755 "$PREFIX"
run rm -rf "$PREFIX/src.new"
run install -d -m 0755 "$PREFIX/src.new"
run tar -C "$SOURCE" --exclude=./.venv --exclude=./.git --exclude=__pycache__ \
    --exclude=./demo --exclude=./bench/out --exclude=./node_modules --exclude=./build \
    --exclude='*.egg-info' -cf "$PREFIX/src.tar" .
run tar -C "$PREFIX/src.new" -xf "$PREFIX/src.tar"
run rm -f "$PREFIX/src.tar"
run rm -rf "$PREFIX/src"
run mv "$PREFIX/src.new" "$PREFIX/src"
# Debian's own Python, by its path: the services cannot see /root or /home
# (ProtectHome=yes), so a virtualenv made from a python found there (pyenv,
# a user's build) would not start.
PYTHON=/usr/bin/python3
if [ -x "$VENV/bin/pip" ] && [ "$(readlink -f "$VENV/bin/python")" = "$(readlink -f "$PYTHON")" ]; then
  note "virtualenv $VENV exists"
else
  if [ -e "$VENV" ]; then
    note "virtualenv $VENV is incomplete or not made from $PYTHON: making it again"
    run rm -rf "$VENV"
  fi
  run "$PYTHON" -m venv "$VENV"
fi
# Exactly the server's lock, every file checked against its hash; then the
# project itself, which resolves nothing more (its build needs only what the
# lock holds: setuptools and Babel, which compiles the catalogs).
run "$VENV/bin/pip" install -q --require-hashes -r "$PREFIX/src/requirements/server.txt"
run "$VENV/bin/pip" install -q --no-deps --no-build-isolation "$PREFIX/src"
# The service runs as $SERVICE_USER and must not be able to change its own code.
run chown -R root:root "$PREFIX"
run chmod -R go-w "$PREFIX"

step "Install the settings in $ETC"
run install -d -m 0755 "$ETC" "$ETC/keys"
if [ -e "$ETC/intake.toml" ]; then
  note "$ETC/intake.toml exists: kept as it is"
else
  run install -m 0644 "$SOURCE/deploy/intake.toml" "$ETC/intake.toml"
fi
run install -m 0644 "$SOURCE/deploy/gunicorn.conf.py" "$ETC/gunicorn.conf.py"

step "Install the systemd units and the services' journal settings"
for unit in intake-witness.service intake-staff.service intake-retention.service intake-retention.timer \
    intake-tidy.service intake-tidy.timer; do
  run install -m 0644 "$SOURCE/deploy/systemd/$unit" "$UNIT_DIR/$unit"
done
run install -m 0644 "$SOURCE/deploy/journald@intake.conf" /etc/systemd/journald@intake.conf
run systemctl daemon-reload

step "Install the torrc (two onion services, no listening port)"
if [ -e "$TORRC" ] && ! [ -e "$TORRC.debian" ] && ! grep -q '^## Intake' "$TORRC"; then
  run cp -p "$TORRC" "$TORRC.debian"
fi
run install -m 0644 "$SOURCE/deploy/torrc" "$TORRC"
run tor --defaults-torrc /usr/share/tor/tor-service-defaults-torrc -f "$TORRC" --verify-config --quiet

step "Start the services"
run systemctl enable intake-retention.timer
run systemctl restart intake-retention.timer
run systemctl enable intake-tidy.timer
run systemctl restart intake-tidy.timer
# The first pass makes the pool the first envelopes are taken from.
run systemctl start intake-tidy.service
if ls "$ETC/keys/"*.pub >/dev/null 2>&1; then
  run systemctl enable intake-witness.service
  run systemctl restart intake-witness.service
else
  note "no team public key in $ETC/keys yet: the witness service is installed but not"
  note "started. Copy NAME.pub from the air-gapped workstation there, then run"
  note "  systemctl enable --now intake-witness.service"
fi
if [ "$DRY_RUN" = 1 ] || "$VENV/bin/python" -I -c 'import intake.server.staff' 2>/dev/null; then
  run systemctl enable intake-staff.service
  run systemctl restart intake-staff.service
else
  note "this version has no staff app (intake.server.staff): intake-staff.service not started"
fi
run systemctl enable tor.service
run systemctl restart tor.service

step "Check the setup"
# As the service user: what it can read and write is what matters.
run runuser -u "$SERVICE_USER" -- env INTAKE_CONFIG="$ETC/intake.toml" "$VENV/bin/intake" doctor \
    || note "intake doctor found something to fix (above)"
# That ran outside the witness unit; the unit checks its cleaners' sandbox
# inside its own restrictions before it starts (ExecStartPre), to its journal.
if [ "$DRY_RUN" = 0 ] && systemctl is-active --quiet intake-witness.service; then
  note "The witness unit's own check of its cleaners' sandbox (its journal):"
  invocation="$(systemctl show -p InvocationID --value intake-witness.service)"
  journalctl --namespace=intake --no-pager -o cat "_SYSTEMD_INVOCATION_ID=$invocation" \
    | grep -E '^(OK|WARNING|PROBLEM) +sandbox|^ +fix:|problem\(s\)' | sed 's/^/   /' || true
fi

step "Onion addresses"
if [ "$DRY_RUN" = 1 ]; then
  note "witness: (read from $TOR_DATA/intake-witness/hostname once tor has started)"
  note "staff:   (read from $TOR_DATA/intake-staff/hostname once tor has started)"
  exit 0
fi
for _ in $(seq 1 60); do
  [ -s "$TOR_DATA/intake-witness/hostname" ] && [ -s "$TOR_DATA/intake-staff/hostname" ] && break
  sleep 1
done
note "witness: $(cat "$TOR_DATA/intake-witness/hostname" 2>/dev/null || echo 'not yet written: see journalctl -u tor@default')"
note "staff:   $(cat "$TOR_DATA/intake-staff/hostname" 2>/dev/null || echo 'not yet written')"
if [ -z "$(ls -A "$TOR_DATA/intake-staff/authorized_clients" 2>/dev/null)" ]; then
  note "The staff address has no authorized client yet: add one before use"
  note "(deploy/staff-client-key.py, docs/operations.md)."
fi
