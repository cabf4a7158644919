#!/usr/bin/env bash
# Ingest benchmark of one Fjord binary on a fresh data directory, the way BENCHMARKS.md's figures
# were taken: start `fjord server` with bench/fjord-bench.yaml on a loopback port, push the
# dataset with `fjord-bench ingest --pid … --flush --data-dir-of-server <data>/store`, stop it.
#
#   bench/ingest-fjord.sh FJORD_BINARY DATASET_DIR [extra fjord-bench ingest flags…]
#
# Environment: PORT (default 3191), FJORD_ARGS (extra server flags, e.g.
# "--set ingester.max_chunk_memory=32MB"), FJORD_BENCH (the fjord-bench binary; default
# `cargo run --release -p fjord-bench --`), KEEP_RUNNING=1 to leave the server up for `query`
# (its pid and data directory are printed).
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
fjord=$1
data=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
port=${PORT:-3191}
bench=${FJORD_BENCH:-cargo run --quiet --release -p fjord-bench --}

dir=$(mktemp -d /tmp/fjord-bench-server.XXXXXX)
"$fjord" server --http-listen-address "127.0.0.1:$port" --data-dir "$dir" \
    --config "$here/fjord-bench.yaml" ${FJORD_ARGS:-} >"$dir.log" 2>&1 &
pid=$!
if [ "${KEEP_RUNNING:-0}" != 1 ]; then
    trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir" "$dir.log"' EXIT
fi

for _ in $(seq 200); do
    if curl -sf "http://127.0.0.1:$port/ready" >/dev/null; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "fjord exited; its log:" >&2
        cat "$dir.log" >&2
        exit 1
    fi
    sleep 0.1
done

$bench ingest "http://127.0.0.1:$port" --data "$data" --pid "$pid" --flush \
    --data-dir-of-server "$dir/store" "$@"

echo "WAL after flush: $(du -sh "$dir/wal" | cut -f1); store: $(du -sh "$dir/store" | cut -f1)" >&2
if [ "${KEEP_RUNNING:-0}" = 1 ]; then
    echo "server still running: pid $pid, http://127.0.0.1:$port, data $dir, log $dir.log" >&2
fi
