#!/usr/bin/env bash
# Checks scripts/mailwheel.service the way an install would use it (CI runs this; so can you).
#
# `systemd-analyze verify` checks the unit's syntax and that ExecStart's program exists; it only
# *warns* (exit 0) about a misspelled setting, so any output at all counts as a failure here. The
# unit names install paths (/usr/bin/node, /opt/mailwheel, /etc/mailwheel) that a CI machine does
# not have, so the check runs on a copy in which exactly those prefixes are mapped onto a staged
# install (this repo as /opt/mailwheel, the node on PATH as /usr/bin/node, a sample /etc/mailwheel),
# and fails if a prefix is not found or anything else differs. Then:
#   - the mapped ExecStart entry point is run (`config check` with the staged config and
#     environment file), so a unit pointing at a file the build does not produce fails here;
#   - `systemd-analyze security` must rate the hardening at exposure 2.0 or better (0 = locked
#     down, 10 = none), so a removed protection fails CI instead of going unnoticed.
# Needs `npm run build` first (npm ci runs it) and systemd-analyze (Debian package `systemd`).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
unit="${1:-$repo/scripts/mailwheel.service}"
max_exposure_tenths=15

command -v systemd-analyze >/dev/null || { echo "check-service-unit: systemd-analyze not found (apt-get install systemd)" >&2; exit 1; }
node_bin="$(command -v node)"
[ -f "$repo/dist/cli/main.js" ] || { echo "check-service-unit: $repo/dist/cli/main.js missing: run npm run build first" >&2; exit 1; }

# What the issue asks of the unit, as settings that must be present exactly.
for line in Type=simple Restart=on-failure User=mailwheel NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
  EnvironmentFile=/etc/mailwheel/mailwheel.env KillSignal=SIGTERM "RestartPreventExitStatus=78 64"; do
  grep -qxF -- "$line" "$unit" || { echo "check-service-unit: $unit lacks the line $line" >&2; exit 1; }
done
# The stop timeout must outlast a graceful stop: the send drain plus the analytics flush, each
# bounded by send.drainTimeoutMs (config/default.json), plus a margin for closing connections.
stop_s="$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")"
drain_ms="$(node -e 'process.stdout.write(String(require(process.argv[1]).send.drainTimeoutMs))' "$repo/config/default.json")"
if [ -z "$stop_s" ] || [ $((stop_s * 1000)) -le $((2 * drain_ms + 10000)) ]; then
  echo "check-service-unit: TimeoutStopSec=${stop_s:-?} must exceed 2 x send.drainTimeoutMs (${drain_ms} ms) + 10 s" >&2
  exit 1
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/etc" "$stage/opt"
ln -s "$repo" "$stage/opt/mailwheel"
mkdir "$stage/etc/mailwheel"
echo '{ "log": { "level": "warn" } }' >"$stage/etc/mailwheel/config.json"
cat >"$stage/etc/mailwheel/mailwheel.env" <<'EOF'
MONGODB_URI=mongodb://mailwheel:secret@127.0.0.1:27017/app
SMTP_URL=smtps://apikey:secret@smtp.example.com:465
EOF

# The unit's paths, each of which must occur in it, and where they go in the staged copy.
mapped="$stage/mailwheel.service"
cp "$unit" "$mapped"
for pair in "/usr/bin/node|$node_bin" "/opt/mailwheel|$stage/opt/mailwheel" "/etc/mailwheel|$stage/etc/mailwheel"; do
  from="${pair%%|*}"
  to="${pair#*|}"
  grep -qF -- "$from" "$mapped" || { echo "check-service-unit: the unit no longer mentions $from; update this script" >&2; exit 1; }
  # '#' is not in any of these paths.
  sed -i "s#${from}#${to}#g" "$mapped"
done
# Mapping back must give the original unit byte for byte: nothing else was changed.
back="$(sed -e "s#${stage}/etc/mailwheel#/etc/mailwheel#g" -e "s#${stage}/opt/mailwheel#/opt/mailwheel#g" -e "s#${node_bin}#/usr/bin/node#g" "$mapped")"
[ "$back" = "$(cat "$unit")" ] || { echo "check-service-unit: path mapping changed more than the paths" >&2; exit 1; }

echo "check-service-unit: systemd-analyze verify (paths mapped to a staged install in $stage)"
out="$(systemd-analyze verify "$mapped" 2>&1)" && rc=0 || rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
  echo "$out" >&2
  echo "check-service-unit: systemd-analyze verify is not clean (exit $rc)" >&2
  exit 1
fi

# ExecStart as written, minus the subcommand: the entry point must exist and load the config.
exec_start="$(sed -n 's/^ExecStart=//p' "$mapped")"
read -r -a argv <<<"$exec_start"
[ "${argv[-1]}" = "start" ] || { echo "check-service-unit: ExecStart should end with 'start': $exec_start" >&2; exit 1; }
unset 'argv[-1]'
echo "check-service-unit: ${argv[*]} config check (with the staged EnvironmentFile)"
(
  set -a
  # shellcheck disable=SC1091
  . "$stage/etc/mailwheel/mailwheel.env"
  set +a
  export MAILWHEEL_CONFIG="$stage/etc/mailwheel/config.json"
  "${argv[@]}" config check >/dev/null
)

echo "check-service-unit: systemd-analyze security (exposure must be <= $((max_exposure_tenths / 10)).$((max_exposure_tenths % 10)))"
if ! systemd-analyze security --offline=yes --threshold="$max_exposure_tenths" "$unit" >"$stage/security.txt" 2>&1; then
  cat "$stage/security.txt" >&2
  echo "check-service-unit: hardening regressed (see the table above)" >&2
  exit 1
fi
grep -F 'Overall exposure level' "$stage/security.txt"
echo "check-service-unit: OK"
