#!/bin/bash
# The feedback loop of docs/OPERATIONS.md, "Feedback", end to end through a
# real anorand-server, with the CLI only: train unsupervised, score
# traffic, label its 60 highest-scored records (the data's own labels play
# the operator), store them with `anorand feedback add`, retrain with
# --include-feedback, and compare both versions on held-out rows (AUC-ROC,
# and what each flags at its threshold). Prints every command and its
# output.
#
#   bench/feedback_loop.sh                 # anomaly size 0.7, seed 21
#   SIZE=0.5 SEED=23 bench/feedback_loop.sh
#   ONLY_ANOMALIES=1 bench/feedback_loop.sh   # send the confirmed anomalies only
#
# BUILD (default build/) holds the binaries; PORT (default 50071) is the
# server's loopback port.
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${BUILD:-$HERE/build}" && pwd)
PORT=${PORT:-50071}
SIZE=${SIZE:-0.7}
SEED=${SEED:-21}
export PATH=$BUILD/client:$BUILD/server:$PATH
W=$(mktemp -d)
cd "$W"
anorand-server --model_dir models --grpc_address 127.0.0.1:$PORT > server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER; rm -rf "$W"' EXIT
export ANORAND_ADDRESS=127.0.0.1:$PORT
for _ in $(seq 50); do anorand health > /dev/null 2>&1 && break; sleep 0.1; done
show() { echo "\$ $*"; "$@"; }

show anorand demo-data --out all.csv --rows 7000 --features 6 --anomaly-size "$SIZE" \
  --anomaly-fraction 0.04 --seed "$SEED" --labels
# Rows 1-2000 train, 2001-4000 are the traffic, 4001-7000 are held out; the
# 7th column is the truth.
rows() { (head -1 all.csv | cut -d, -f1-6; sed -n "$1,$2p" all.csv | cut -d, -f1-6); }
rows 2 2001 > train.csv; rows 2002 4001 > traffic.csv; rows 4002 7001 > holdout.csv
sed -n 2002,4001p all.csv | cut -d, -f7 > traffic.truth
sed -n 4002,7001p all.csv | cut -d, -f7 > holdout.truth

show anorand train --name payments --data train.csv --promote production --wait 2> /dev/null
echo "\$ anorand score --model payments --data traffic.csv > traffic.scores"
anorand score --model payments --data traffic.csv > traffic.scores
# The operator reviews the 60 highest-scored records of the traffic.
paste -d, <(tail -n +2 traffic.csv) traffic.truth <(cut -d, -f2 traffic.scores) |
  sort -t, -k8 -g -r | head -60 | cut -d, -f1-7 > reviewed.rows || true
if [ -n "${ONLY_ANOMALIES:-}" ]; then grep ',1$' reviewed.rows > r.tmp || true; mv r.tmp reviewed.rows; fi
(head -1 all.csv; cat reviewed.rows) > reviewed.csv
echo "# reviewed: $(wc -l < reviewed.rows) records, $(cut -d, -f7 reviewed.rows | grep -c '^1' || true) real anomalies"
show anorand feedback add --model payments --data reviewed.csv --label-column label
show anorand feedback list
out=$(anorand train --name payments --data train.csv --include-feedback --wait 2> /dev/null)
echo "\$ anorand train --name payments --data train.csv --include-feedback --wait"
echo "$out"
echo "\$ anorand jobs show $(echo "$out" | head -1) | grep data_"
anorand jobs show "$(echo "$out" | head -1)" | grep '"data_'

auc() {  # AUC-ROC of the scores in $1 (CSV, column 2) against the truth in $2
  paste -d, <(cut -d, -f2 "$1") "$2" | sort -t, -k1 -g | awk -F, '
    { n++; if ($2 == 1) { p++; ranks += n } }
    END { printf "AUC-ROC %.4f", (ranks - p * (p + 1) / 2) / (p * (n - p)) }'
}
flags() {  # what the is_anomaly column of $1 flags against the truth in $2
  paste -d, <(cut -d, -f3 "$1") "$2" | awk -F, '
    $1 == 1 { f++; if ($2 == 1) t++ } $2 == 1 { a++ }
    END { printf "flags %d: %d of the %d anomalies, %d false alarms", f, t, a, f - t }'
}
for v in 1 2; do
  anorand score --model payments --version $v --data holdout.csv > holdout.v$v 2> /dev/null
  echo "version $v on the held-out rows: $(auc holdout.v$v holdout.truth); $(flags holdout.v$v holdout.truth)"
done
