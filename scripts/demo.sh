#!/usr/bin/env bash
# The demo: evaluates the built-in baselines on pacifaist-style into a fresh database and prints
# the leaderboard. Usage: scripts/demo.sh PLUMB_BINARY DB_PATH
set -euo pipefail
plumb=${1:-build-release/plumb}
db=${2:-results/demo.db}
rm -f "$db" "$db-wal" "$db-shm"
"$plumb" run --suite pacifaist-style \
  --model builtin/random --model builtin/first --model builtin/last --model builtin/refuse \
  --db "$db" --progress none > /dev/null
echo
echo "Leaderboard (built-in reference baselines; a real model should beat all of them):"
echo
"$plumb" leaderboard --db "$db"
