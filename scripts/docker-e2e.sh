#!/usr/bin/env bash
# End-to-end check of the Docker images, built and run for real (issue 15):
#   engine      start dockerd when none answers (stopped again at exit)
#   base        python:3.11-slim-bookworm, or when it cannot be pulled a Debian bookworm root
#               file system (debootstrap, python3 + venv) imported as facefind-base:bookworm
#   inputs      PyTorch wheels and the YuNet file from docker/local/ when their real sources
#               (PyTorch's CPU index, the OpenCV zoo) cannot be reached
#   build       docker compose build service (the CPU image, facefind:cpu)
#   up          docker compose up -d; wait for the health check
#   enrol       POST /gallery, then POST /query finds the face, through the published port
#   uid         the service and the indexer run as uid 10001
#   indexer     docker compose run --rm indexer build /gallery on a few identities, restart the
#               service (it loads the store at start), POST /query finds them
#   persist     docker compose down, up: the gallery is still there (named volume)
# Each step is named on failure; the exit status is non-zero. Figures (image sizes, build
# time, time to healthy) go to a JSON file; --record writes docs/docker-e2e.json and the
# figures table of docs/docker.md.
#
# Usage: scripts/docker-e2e.sh [--record] [--json PATH] [--no-cache] [--keep]
# Environment: DOCKER_E2E_PORT (18080), DOCKER_E2E_PROJECT (facefind-e2e), PYTHON_IMAGE (skip
# the base step), DEBIAN_MIRROR, FACEFIND_SHARED (../shared), DOCKER_E2E_WORK (a temp folder),
# TORCH_WHEELS_DIR (where pip downloads the wheels to), DOCKERD and DOCKER (the engine, client).
# Needs root for dockerd and debootstrap, curl, python3, and Debian's docker.io with either
# the `docker compose` plugin or docker-compose.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

record=0 keep=0 no_cache=()
json="$root/build/docker-e2e.json"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --record) record=1 json="$root/docs/docker-e2e.json" ;;
        --json) json="$2"; shift ;;
        --no-cache) no_cache=(--no-cache) ;;
        --keep) keep=1 ;;
        *) echo "docker-e2e: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

port="${DOCKER_E2E_PORT:-18080}"
project="${DOCKER_E2E_PROJECT:-facefind-e2e}"
shared="${FACEFIND_SHARED:-$root/../shared}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base_tag="facefind-base:bookworm-python3.11"
image="facefind:cpu"
started_at=$(date +%s)
work="${DOCKER_E2E_WORK:-$(mktemp -d /var/tmp/facefind-e2e.XXXXXX)}"
mkdir -p "$work"

step_name="setup"
dockerd_pid="" container=""
staged=()
declare -A figures=()

step() {
    step_name="$1"
    echo
    echo "=== docker-e2e: $1: $2"
}

fail() {
    echo "docker-e2e: $step_name: $*" >&2
    exit 1
}

# Lazily unmounts whatever is mounted under a folder (debootstrap mounts /proc and /sys in its
# root file system, and leaves them there when it fails), deepest first.
unmount_under() {
    findmnt -R -n -o TARGET "$1" 2>/dev/null | sort -r | xargs -r umount -l || true
}

now() { date +%s.%N; }
since() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$1" "$(now)"; }

compose() {
    COMPOSE_PROJECT_NAME="$project" FACEFIND_PORT="$port" GALLERY_DIR="$work/gallery" \
        "${compose_cmd[@]}" "$@"
}

# shellcheck disable=SC2329,SC2317  # invoked by the EXIT trap
cleanup() {
    local status=$?
    set +e
    if [[ $status -ne 0 ]]; then
        echo "docker-e2e: FAILED at step '$step_name' (exit $status)" >&2
        if [[ -n "$container" ]]; then
            compose logs --tail 60 service >&2 2>/dev/null
        fi
    fi
    if [[ -n "${compose_cmd[*]:-}" && $keep -eq 0 ]]; then
        compose --profile indexer down -v --remove-orphans >/dev/null 2>&1
    fi
    for path in "${staged[@]}"; do rm -f "$path"; done
    if [[ -n "$dockerd_pid" ]]; then
        echo "docker-e2e: stopping the dockerd it started (pid $dockerd_pid)"
        kill "$dockerd_pid" 2>/dev/null
        for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 1; done
    fi
    [[ -d "$work/rootfs" ]] && unmount_under "$work/rootfs"
    [[ -z "${DOCKER_E2E_WORK:-}" ]] && rm -rf --one-file-system "$work"
    exit "$status"
}
trap cleanup EXIT

# --- engine --------------------------------------------------------------------------------
step engine "a Docker engine and its own client"
dockerd_bin="${DOCKERD:-$(command -v dockerd || true)}"
[[ -x "$dockerd_bin" ]] || fail "dockerd not found (apt-get install docker.io)"
# The client packaged with the engine: another docker earlier on PATH may lack what this
# engine's builds need (a newer CLI without the buildx plugin cannot use BuildKit).
docker_bin="${DOCKER:-}"
for candidate in "$(dirname "$dockerd_bin")/docker" /usr/bin/docker "$(command -v docker || true)"; do
    if [[ -z "$docker_bin" && -x "$candidate" ]]; then docker_bin="$candidate"; fi
done
[[ -n "$docker_bin" ]] || fail "no docker client found"
mkdir -p "$work/bin"
ln -sf "$docker_bin" "$work/bin/docker"
export PATH="$work/bin:$PATH"
if ! docker info >/dev/null 2>&1; then
    echo "no engine answers: starting $dockerd_bin"
    "$dockerd_bin" >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log" >&2; fail "dockerd did not start"; }
fi
engine_version="$(docker version --format '{{.Server.Version}}')"
# BuildKit: the Dockerfiles bind-mount docker/local/ (RUN --mount).
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
if docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose_cmd=(docker-compose)
else
    fail "neither 'docker compose' nor docker-compose is installed"
fi
compose_version="$("${compose_cmd[@]}" version --short 2>/dev/null || "${compose_cmd[@]}" version | head -1)"
echo "engine $engine_version, client $docker_bin, compose: ${compose_cmd[*]} $compose_version"

# --- base ----------------------------------------------------------------------------------
step base "the Python base image"
t0=$(now)
base_made="no"
if [[ -n "${PYTHON_IMAGE:-}" ]]; then
    base="$PYTHON_IMAGE"
elif timeout 120 docker pull python:3.11-slim-bookworm >/dev/null 2>&1; then
    base="python:3.11-slim-bookworm"
elif docker image inspect "$base_tag" >/dev/null 2>&1; then
    base="$base_tag"
    echo "python:3.11-slim-bookworm cannot be pulled; reusing $base_tag"
else
    base="$base_tag"
    base_made="yes"
    echo "python:3.11-slim-bookworm cannot be pulled; making $base_tag with debootstrap"
    command -v debootstrap >/dev/null || fail "debootstrap not found (apt-get install debootstrap)"
    rootfs="$work/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
    # Updates and security fixes for apt-get inside builds, as the python images get them.
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
    # Certificate authorities this host adds (a TLS-inspecting egress, say): without them pip
    # inside the build cannot reach PyPI where the host can.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >/dev/null
    fi
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    # Nothing of the host may be mounted inside when it is packed (or deleted).
    unmount_under "$rootfs"
    tar -C "$rootfs" --one-file-system -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' - "$base_tag" >/dev/null
    rm -rf --one-file-system "$rootfs"
fi
docker run --rm "$base" python3 -c 'import sys, venv; assert sys.version_info[:2] == (3, 11)' \
    || fail "$base has no Python 3.11 with venv"
figures[base_seconds]=$(since "$t0")

# --- inputs --------------------------------------------------------------------------------
step inputs "PyTorch wheels and the YuNet file"
build_args=(--build-arg "PYTHON_IMAGE=$base")
arg_default() { sed -n "s/^ARG $1=//p" docker/Dockerfile | head -1; }
torch_version="$(arg_default TORCH_VERSION)"
torchvision_version="$(arg_default TORCHVISION_VERSION)"
yunet_url="$(arg_default YUNET_URL)"
if curl -fsS --max-time 20 -o /dev/null https://download.pytorch.org/whl/cpu/torch/ 2>/dev/null; then
    torch_from="index"
else
    torch_from="context"
    wheels="${TORCH_WHEELS_DIR:-$HOME/.cache/facefind/docker-e2e-wheels}"
    echo "PyTorch's CPU index cannot be reached: torch $torch_version from $wheels"
    mkdir -p "$wheels"
    if ! compgen -G "$wheels/torch-$torch_version*.whl" >/dev/null \
        || ! compgen -G "$wheels/torchvision-$torchvision_version*.whl" >/dev/null; then
        python3 -m pip download --no-deps -d "$wheels" \
            "torch==$torch_version" "torchvision==$torchvision_version" \
            || fail "cannot get torch $torch_version wheels"
    fi
    for wheel in "$wheels/torch-$torch_version"*.whl "$wheels/torchvision-$torchvision_version"*.whl; do
        ln -f "$wheel" docker/local/ 2>/dev/null || cp "$wheel" docker/local/
        staged+=("docker/local/$(basename "$wheel")")
    done
    build_args+=(--build-arg TORCH_FROM=context)
    # Only a +cpu wheel is a CPU build; a CUDA one (what pip has here) must be allowed.
    if ! compgen -G "$wheels/torch-$torch_version+cpu*.whl" >/dev/null; then
        echo "the torch wheel is a CUDA build: CPU_ONLY_TORCH=0 (a larger image)"
        build_args+=(--build-arg CPU_ONLY_TORCH=0)
        torch_from="context (CUDA build)"
    fi
fi
if curl -fsSL --max-time 20 -o /dev/null "$yunet_url" 2>/dev/null; then
    yunet_from="url"
else
    yunet_from="context"
    echo "the OpenCV zoo cannot be reached: YuNet from $shared/models"
    cp "$shared/models/face_detection_yunet.onnx" docker/local/ \
        || fail "no $shared/models/face_detection_yunet.onnx"
    staged+=(docker/local/face_detection_yunet.onnx)
    build_args+=(--build-arg YUNET_URL=docker/local/face_detection_yunet.onnx)
fi

# --- build ---------------------------------------------------------------------------------
step build "${compose_cmd[*]} build service (${no_cache[*]:-with the build cache})"
t0=$(now)
compose build "${no_cache[@]}" "${build_args[@]}" service || fail "image build failed"
figures[build_seconds]=$(since "$t0")
image_bytes="$(docker image inspect -f '{{.Size}}' "$image")"
base_bytes="$(docker image inspect -f '{{.Size}}' "$base")"
echo "built $image: $image_bytes bytes in ${figures[build_seconds]} s"
# The image this build replaced, now untagged: several GB each time the sources change.
docker image prune -f --filter label=org.opencontainers.image.title=facefind >/dev/null

# --- up ------------------------------------------------------------------------------------
url="http://127.0.0.1:$port"
serving_s="" healthy_s=""
wait_healthy() {
    # Sets serving_s, the seconds until /health answers on the published port, and healthy_s,
    # until Docker's health check says healthy (its first probe is one interval, 30 s, in).
    local t0 serving="" status
    t0=$(now)
    container="$(compose ps -q service)"
    [[ -n "$container" ]] || fail "no service container"
    for _ in $(seq 600); do
        if [[ -z "$serving" ]] && curl -fsS --max-time 2 "$url/health" >/dev/null 2>&1; then
            serving=$(since "$t0")
        fi
        status="$(docker inspect -f '{{.State.Health.Status}}' "$container")"
        if [[ "$status" == healthy && -n "$serving" ]]; then
            serving_s=$serving healthy_s=$(since "$t0")
            return
        fi
        [[ "$status" == unhealthy ]] && fail "the container is unhealthy"
        [[ "$(docker inspect -f '{{.State.Running}}' "$container")" == true ]] \
            || fail "the container stopped"
        sleep 1
    done
    fail "not healthy after 600 s"
}
step up "${compose_cmd[*]} up -d, then wait until healthy"
compose up -d service || fail "up failed"
wait_healthy
figures[up_to_serving_seconds]=$serving_s
figures[up_to_healthy_seconds]=$healthy_s
echo "serving after ${figures[up_to_serving_seconds]} s, healthy after ${figures[up_to_healthy_seconds]} s"

# --- enrol ---------------------------------------------------------------------------------
faces="$shared/data/five-celebrity"
photos() { find "$faces/$1" -maxdepth 1 -type f -name '*.jpg' | sort; }
top_label() {
    # The label of the best match for one photo, through the published port.
    curl -fsS --max-time 120 -F "image=@$1" "$url/query?k=1" \
        | python3 -c 'import json, sys; f = json.load(sys.stdin)["faces"]; print(f[0]["matches"][0]["label"] if f and f[0]["matches"] else "")'
}
gallery_count() {
    curl -fsS --max-time 30 "$url/gallery?limit=1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])'
}
step enrol "POST /gallery, then POST /query finds the face"
mapfile -t madonna < <(photos madonna)
[[ ${#madonna[@]} -ge 3 ]] || fail "too few photos in $faces/madonna"
curl -fsS --max-time 300 -F label=madonna -F "images=@${madonna[0]}" -F "images=@${madonna[1]}" \
    "$url/gallery" >"$work/enrol.json" || fail "POST /gallery failed"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert len(r["added"]) == 2, r' \
    "$work/enrol.json" || fail "POST /gallery did not add both photos"
found="$(top_label "${madonna[2]}")"
[[ "$found" == madonna ]] || fail "POST /query with an unseen madonna photo found '$found'"
echo "an unseen photo of madonna is found as madonna"

# --- uid -----------------------------------------------------------------------------------
step uid "the processes run as uid 10001"
service_uid="$(docker exec "$container" python -c 'import os; print(os.getuid())')"
[[ "$service_uid" == 10001 ]] || fail "the service runs as uid $service_uid"
pid1_uid="$(docker exec "$container" stat -c %u /proc/1)"
[[ "$pid1_uid" == 10001 ]] || fail "the container's process 1 runs as uid $pid1_uid"
data_uid="$(docker exec "$container" stat -c %u /data)"
[[ "$data_uid" == 10001 ]] || fail "/data belongs to uid $data_uid"
indexer_uid="$(compose run --rm --no-deps --entrypoint id indexer -u | tr -d '\r')"
[[ "$indexer_uid" == 10001 ]] || fail "the indexer runs as uid $indexer_uid"
echo "service, its process 1, /data and the indexer: uid 10001"

# --- indexer -------------------------------------------------------------------------------
step indexer "docker compose run --rm indexer build /gallery, then POST /query finds them"
identities=(ben_afflek elton_john jerry_seinfeld)
mkdir -p "$work/gallery"
declare -A held_out=()
for who in "${identities[@]}"; do
    mapfile -t shots < <(photos "$who")
    [[ ${#shots[@]} -ge 4 ]] || fail "too few photos in $faces/$who"
    mkdir -p "$work/gallery/$who"
    cp "${shots[@]:0:3}" "$work/gallery/$who/"
    held_out[$who]="${shots[3]}"
done
chmod -R a+rX "$work/gallery"
before=$(gallery_count)
t0=$(now)
compose run --rm indexer build /gallery || fail "the indexer failed"
figures[indexer_seconds]=$(since "$t0")
# The service reads the store when it starts: additions made by another process show up
# after a restart.
compose restart service || fail "restart failed"
wait_healthy
after=$(gallery_count)
[[ $after -gt $before ]] || fail "the gallery did not grow ($before -> $after)"
for who in "${identities[@]}"; do
    found="$(top_label "${held_out[$who]}")"
    [[ "$found" == "$who" ]] || fail "an unseen photo of $who was found as '$found'"
done
echo "gallery $before -> $after faces; unseen photos of ${identities[*]} found"

# --- persist -------------------------------------------------------------------------------
step persist "docker compose down, up: the gallery is still there"
compose down || fail "down failed"
compose up -d service || fail "up failed"
wait_healthy
again=$(gallery_count)
[[ "$again" == "$after" ]] || fail "the gallery had $after faces before down, $again after"
found="$(top_label "${madonna[2]}")"
[[ "$found" == madonna ]] || fail "after down and up, madonna was found as '$found'"
echo "after down and up: $again faces, madonna still found"

# --- figures -------------------------------------------------------------------------------
step figures "write $json"
figures[total_seconds]=$(( $(date +%s) - started_at ))
mkdir -p "$(dirname "$json")"
command="scripts/docker-e2e.sh"
((record)) && command+=" --record"
[[ ${#no_cache[@]} -gt 0 ]] && command+=" --no-cache"
python3 - "$json" <<EOF
import json, platform, sys
figures = {
    "command": "$command",
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "machine": {"cpus": $(nproc), "memory_gib": round($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 2**20), "kernel": platform.release()},
    "engine": "$engine_version",
    "compose": "${compose_cmd[*]} $compose_version",
    "base_image": "$base",
    "base_made_with_debootstrap": "$base_made" == "yes",
    "torch_from": "$torch_from",
    "yunet_from": "$yunet_from",
    "build_cache": "${no_cache[*]:+none}" or "used",
    "image_bytes": $image_bytes,
    "base_image_bytes": $base_bytes,
    "base_seconds": ${figures[base_seconds]},
    "build_seconds": ${figures[build_seconds]},
    "up_to_serving_seconds": ${figures[up_to_serving_seconds]},
    "up_to_healthy_seconds": ${figures[up_to_healthy_seconds]},
    "indexer_seconds": ${figures[indexer_seconds]},
    "total_seconds": ${figures[total_seconds]},
}
with open(sys.argv[1], "w") as out:
    json.dump(figures, out, indent=2)
    out.write("\n")
EOF
cat "$json"
if ((record)); then
    python3 docker/e2e_figures.py "$json" docs/docker.md || fail "docs/docker.md not updated"
fi
step passed "all steps passed in ${figures[total_seconds]} s"
