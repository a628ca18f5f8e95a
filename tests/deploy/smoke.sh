#!/usr/bin/env bash
# Runs what deploy/ runs, without Docker or a cluster, on loopback:
#  1. anorand-server with the Dockerfile's CMD flags, as PID 1 of its own PID
#     namespace when `unshare` allows (as in a container): it must start, and
#     SIGTERM from outside must drain and stop it with exit code 0;
#  2. anorand-server with compose's flags and with each Kubernetes flag file
#     set (serving: base + scaled; trainer): each must start. compose's
#     `trainer` profile: `anorand` with ANORAND_MAX_QUEUED_JOBS=0 refuses jobs
#     (FAILED_PRECONDITION naming the flag), the `trainer` service (its
#     command with compose's variable defaults) trains on the same store and
#     `anorand` loads the version; the trainer's job records are in its own
#     --jobs_dir, which a restart of `anorand` leaves alone, while an
#     unfinished record in anorand's own folder turns FAILED;
#  3. serving and trainer share one store, as on the cluster. The serving
#     set requires model `fraud`: Scoring is NOT_SERVING (the readiness probe
#     fails) until the training Job's own script, taken from
#     deploy/k8s/jobs/train-job.yaml, trains and publishes it with
#     publish-model and moves the alias (with the admin token); then Scoring
#     turns SERVING. Serving replicas refuse training jobs and calls without
#     the token; the trainer trains version 2 through the Training API
#     (--data_dir) and promotes it, and the serving replica follows;
#  4. seed-demo (compose's seed service) seeds an empty store once and does
#     nothing the second time.
# Addresses, model folders, the token file, the data folder and training
# threads (1: CI runs tests in parallel on 2 cores) are overridden.
#
# usage: smoke.sh ROOT ANORAND_SERVER ANORAND_CLI
set -euo pipefail
root=$1 server=$2 cli=$3
for b in "$server" "$cli"; do
  [[ -x "$b" ]] || { echo "SKIP: $b is not built"; exit 77; }
done
py=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null; then py=$p; break; fi
done
[[ -n "$py" ]] || { echo "SKIP: no python3 with the yaml module (python3-yaml)"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/anorand-deploy-smoke.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
bindir=$work/bin
mkdir -p "$bindir"
ln -s "$cli" "$bindir/anorand"
ln -s "$server" "$bindir/anorand-server"
export PATH="$bindir:$root/deploy/scripts:$PATH"
unset ANORAND_AUTH_TOKEN ANORAND_TOKEN ANORAND_ADDRESS
fail() { echo "FAIL: $*"; for l in "$work"/*.log; do echo "--- $l"; tail -20 "$l"; done; exit 1; }

extra=()
if "$server" --helpfull 2>&1 | grep -q -- '--metrics_address'; then
  extra+=(--metrics_address=127.0.0.1:0)
fi

# start NAME FLAGS... : starts the server with FLAGS + loopback overrides;
# sets $port and $pid. With SMOKE_PID1=1, inside `unshare --pid --fork`.
# The store is $work/NAME/models, or $STORE.
start() {
  local name=$1
  shift
  local log="$work/$name.log" store="${STORE:-$work/$name/models}"
  mkdir -p "$store"
  local cmd=("$server" "$@" --grpc_address=127.0.0.1:0 "--model_dir=$store" "${extra[@]}")
  if [[ "${SMOKE_PID1:-0}" == 1 ]]; then
    unshare --pid --fork --kill-child -- "${cmd[@]}" >"$log" 2>&1 &
  else
    "${cmd[@]}" >"$log" 2>&1 &
  fi
  pid=$!
  pids+=("$pid")
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$log")
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || fail "$name: the server exited at start"
    sleep 0.1
  done
  [[ -n "$port" ]] || fail "$name: the server did not start in 10 s"
  echo "ok   $name: listening on 127.0.0.1:$port ($*)"
}

health() {  # health PORT [SERVICE] -> exit status of anorand health
  anorand health --address "127.0.0.1:$1" ${2:+--service "$2"} --timeout 2 >/dev/null 2>&1
}

wait_serving() {  # wait_serving PORT SERVICE SECONDS
  local end=$((SECONDS + $3))
  while ((SECONDS < end)); do
    health "$1" "$2" && return 0
    sleep 0.2
  done
  return 1
}

stop() {  # stop PID NAME: SIGTERM, expect a drain and exit code 0 in 15 s
  kill -TERM "$1"
  local rc=0
  for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && fail "$2: still running 15 s after SIGTERM"
  wait "$1" || rc=$?
  [[ $rc == 0 ]] || fail "$2: exit code $rc after SIGTERM"
  grep -q "draining" "$work/$2.log" || fail "$2: no drain after SIGTERM"
}

yamlq() {  # yamlq PYTHON-EXPR : prints the expression's list, one a line
  PYTHONDONTWRITEBYTECODE=1 "$py" - "$root" "$1" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "tests/deploy"))
import deploylib as dl
root = sys.argv[1]
instrs = dl.dockerfile_instructions(os.path.join(root, "deploy/Dockerfile"))
compose = dl.load_yaml_docs(os.path.join(root, "deploy/compose.yaml"))[0]
job = dl.load_yaml_docs(os.path.join(root, "deploy/k8s/jobs/train-job.yaml"))[0]
# cx(COMMAND, VAR="value"...): a compose command as compose interpolates it
# with only those variables set.
cx = lambda command, **env: [dl.compose_expand(t, env) for t in command]  # noqa: E731
value = eval(sys.argv[2])
print("\n".join(value) if isinstance(value, list) else value)
PY
}

# 1. The image's default flags, as PID 1 of a PID namespace.
mapfile -t cmd_flags < <(yamlq '[dl.exec_form(r) for s, i, r in instrs if i == "CMD"][-1]')
if unshare --pid --fork --kill-child -- true 2>/dev/null; then
  SMOKE_PID1=1 start image "${cmd_flags[@]}"
  child=$(awk '{print $1}' "/proc/$pid/task/$pid/children" 2>/dev/null)
  [[ -n "$child" ]] || fail "image: no server process under unshare"
  nspid=$(awk '/^NSpid:/ {print $NF}' "/proc/$child/status")
  [[ "$nspid" == 1 ]] || fail "image: the server is PID $nspid in its namespace, not 1"
  health "$port" || fail "image: not SERVING"
  kill -TERM "$child"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "image: PID 1 still running 15 s after SIGTERM"
  rc=0
  wait "$pid" || rc=$?
  [[ $rc == 0 ]] || fail "image: exit code $rc after SIGTERM"
  grep -q "draining" "$work/image.log" || fail "image: PID 1 did not drain on SIGTERM"
  echo "ok   image: PID 1 in its namespace, SIGTERM drained and stopped it (exit 0)"
else
  echo "note: unshare --pid is not permitted here; the PID 1 case is not run"
  start image "${cmd_flags[@]}"
  health "$port" || fail "image: not SERVING"
  stop "$pid" image
  echo "ok   image: SIGTERM drained and stopped it (exit 0)"
fi

# rebase STORE DATA FLAGS...: FLAGS, one a line, with values under /models
# (the image's volume) moved to STORE and under /data to DATA.
rebase() {
  local store=$1 data=$2 t
  shift 2
  for t in "$@"; do
    case $t in
      --*=/models | --*=/models/*) t="${t%%=*}=$store${t#*=/models}" ;;
      --*=/data | --*=/data/*) t="${t%%=*}=$data${t#*=/data}" ;;
    esac
    printf '%s\n' "$t"
  done
}

mkdir -p "$work/data"
anorand demo-data --out "$work/data/train.csv" --rows 1500 --features 8 --seed 1 >/dev/null 2>&1

# 2. compose's server flags, no variables set.
mapfile -t compose_flags < <(yamlq 'cx(compose["services"]["anorand"]["command"])')
start compose "${compose_flags[@]}"
health "$port" || fail "compose: not SERVING"
stop "$pid" compose

# 2. compose's trainer profile on one store.
cstore=$work/compose-store
mapfile -t flags < <(yamlq 'cx(compose["services"]["anorand"]["command"], ANORAND_MAX_QUEUED_JOBS="0")')
mapfile -t cserving_flags < <(rebase "$cstore" "$work/data" "${flags[@]}" --poll_seconds=0.5)
mapfile -t flags < <(yamlq 'cx(compose["services"]["trainer"]["command"])')
mapfile -t ctrainer_flags < <(rebase "$cstore" "$work/data" "${flags[@]}" --poll_seconds=0.5)
ctrainer_jobs=$(printf '%s\n' "${ctrainer_flags[@]}" | sed -n 's/^--jobs_dir=//p' | tail -1)
[[ -n "$ctrainer_jobs" && "$ctrainer_jobs" != "$cstore/.jobs" ]] ||
  fail "compose trainer: no --jobs_dir of its own (got '$ctrainer_jobs')"
STORE=$cstore start compose-serving "${cserving_flags[@]}"
cserving_port=$port cserving_pid=$pid
STORE=$cstore start compose-trainer "${ctrainer_flags[@]}"
ctrainer_port=$port ctrainer_pid=$pid
if anorand train --name cdemo --data-path train.csv --address "127.0.0.1:$cserving_port" \
  >"$work/compose-refused.log" 2>&1; then
  fail "compose: anorand with ANORAND_MAX_QUEUED_JOBS=0 accepted a training job"
fi
grep -q 'FAILED_PRECONDITION.*--max_queued_jobs=0' "$work/compose-refused.log" ||
  fail "compose: the refusal is not FAILED_PRECONDITION naming --max_queued_jobs=0: $(cat "$work/compose-refused.log")"
anorand train --name cdemo --data-path train.csv --wait --address "127.0.0.1:$ctrainer_port" \
  >"$work/compose-train.log" 2>&1 || fail "compose trainer: training job failed"
for _ in $(seq 50); do
  anorand models show cdemo --address "127.0.0.1:$cserving_port" 2>/dev/null |
    grep -Eq '^cdemo +1 +READY' && break
  sleep 0.2
done
anorand models show cdemo --address "127.0.0.1:$cserving_port" 2>/dev/null |
  grep -Eq '^cdemo +1 +READY' || fail "compose: anorand does not load the trainer's cdemo/1 in 10 s"
compgen -G "$ctrainer_jobs/*.json" >/dev/null || fail "compose trainer: no job record in $ctrainer_jobs"
if compgen -G "$cstore/.jobs/*.json" >/dev/null; then
  fail "compose: job records in anorand's $cstore/.jobs"
fi
echo "ok   compose --profile trainer: anorand (ANORAND_MAX_QUEUED_JOBS=0) refuses jobs with" \
  "FAILED_PRECONDITION; trainer trained cdemo/1 into the shared store, records in its --jobs_dir"
# An unfinished record (a copy of the finished one, RUNNING, another id) in
# each folder; then `anorand` restarts.
record=$(compgen -G "$ctrainer_jobs/*.json" | head -1)
for dir in "$ctrainer_jobs" "$cstore/.jobs"; do
  "$py" - "$record" "$dir/smoke-running.json" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))
job["id"] = "smoke-running"
job["state"] = "JOB_STATE_RUNNING"
for k in ("finished_unix_ms", "published_version", "error"):
    job.pop(k, None)
json.dump(job, open(sys.argv[2], "w"))
PY
done
cp "$ctrainer_jobs/smoke-running.json" "$work/running-before.json"
stop "$cserving_pid" compose-serving
STORE=$cstore start compose-serving "${cserving_flags[@]}"
cserving_pid=$pid
grep -q 'interrupted by server restart' "$cstore/.jobs/smoke-running.json" ||
  fail "compose: anorand's restart did not fail the unfinished record of its own --jobs_dir"
cmp -s "$work/running-before.json" "$ctrainer_jobs/smoke-running.json" ||
  fail "compose: anorand's restart changed a record in the trainer's --jobs_dir"
echo "ok   compose: a restart of anorand fails unfinished records of its own folder only," \
  "not the trainer's"
stop "$ctrainer_pid" compose-trainer
stop "$cserving_pid" compose-serving

# 2+3. The Kubernetes flag files: the serving fleet (base + scaled) and the
# trainer, on one store; the token and data folders are local files here.
k8s=$root/deploy/k8s
store=$work/store
echo smoke-token >"$work/token"
export ANORAND_TOKEN=smoke-token
STORE=$store start serving "--flagfile=$k8s/base/flags/server.flags,$k8s/overlays/scaled/local.flags" \
  --poll_seconds=0.5 "--admin_token_file=$work/token"
serving_port=$port serving_pid=$pid
health "$serving_port" || fail "serving: the server as a whole is not SERVING (liveness)"
if health "$serving_port" anorand.v1.Scoring; then
  fail "serving: Scoring is SERVING before the required model exists (readiness must fail)"
fi
echo "ok   serving: liveness SERVING, readiness NOT_SERVING until model fraud exists"

trainer_jobs=$(sed -n 's/^--jobs_dir=//p' "$k8s/overlays/trainer/trainer.flags" | tail -1)
[[ -n "$trainer_jobs" ]] || fail "trainer.flags: no --jobs_dir (the trainer needs its own)"
trainer_jobs=$(rebase "$store" "$work/data" "--jobs_dir=$trainer_jobs")
trainer_jobs=${trainer_jobs#--jobs_dir=}
[[ "$trainer_jobs" != "$store/.jobs" ]] || fail "trainer.flags: --jobs_dir is the serving replicas' folder"
STORE=$store start trainer "--flagfile=$k8s/overlays/trainer/trainer.flags" --poll_seconds=0.5 \
  "--admin_token_file=$work/token" "--data_dir=$work/data" --training_omp_threads=1 \
  "--jobs_dir=$trainer_jobs"
trainer_port=$port trainer_pid=$pid
health "$trainer_port" anorand.v1.Training || fail "trainer: Training is not SERVING (readiness)"
echo "ok   trainer: readiness (anorand.v1.Training) SERVING without --require_models"

# The training Job's script, run as the Job runs it (bash -euo pipefail -c).
mapfile -t job_cmd < <(yamlq 'job["spec"]["template"]["spec"]["containers"][0]["command"]')
job_script=$(yamlq 'job["spec"]["template"]["spec"]["containers"][0]["args"][0]')
MODEL_NAME=fraud DATA_FILE=train.csv PROMOTE_ALIAS=production \
  ANORAND_MODEL_DIR="$store" DATA_DIR="$work/data" JOB_NAME=anorand-train-smoke1 \
  ANORAND_ADDRESS="127.0.0.1:$serving_port" OMP_NUM_THREADS=1 FIT_THREADS=1 \
  "${job_cmd[@]}" "$job_script" >"$work/job.log" 2>&1 || fail "the training Job's script failed"
grep -q "published fraud version 1" "$work/job.log" || fail "the Job did not publish fraud version 1"
grep -q "alias production -> fraud version 1" "$work/job.log" || fail "the Job did not move the alias"
[[ -f "$store/fraud/1/model.anorand" ]] || fail "no fraud/1/model.anorand in the store"
if compgen -G "$store/fraud/.incoming-*" >/dev/null; then
  fail "the Job left its staging folder behind"
fi
wait_serving "$serving_port" anorand.v1.Scoring 10 || fail "serving: Scoring not SERVING after publish"
anorand models show fraud --alias production --address "127.0.0.1:$serving_port" >/dev/null ||
  fail "serving: alias production does not resolve"
echo "ok   train-job.yaml script: fit, publish-model -> fraud/1, alias production; readiness SERVING"

if ANORAND_TOKEN='' anorand models alias fraud --alias canary --version 1 \
  --address "127.0.0.1:$serving_port" >/dev/null 2>&1; then
  fail "serving: a Models call without the admin token was accepted"
fi
if anorand train --name fraud --data-path train.csv --address "127.0.0.1:$serving_port" \
  >"$work/refused.log" 2>&1; then
  fail "serving: a serving replica accepted a training job"
fi
grep -q 'FAILED_PRECONDITION.*--max_queued_jobs=0' "$work/refused.log" ||
  fail "serving: the refusal is not FAILED_PRECONDITION naming --max_queued_jobs=0: $(cat "$work/refused.log")"
echo "ok   serving: Models calls need the token; training jobs are refused"

anorand train --name fraud --data-path train.csv --promote production --wait \
  --address "127.0.0.1:$trainer_port" >"$work/train.log" 2>&1 || fail "trainer: training job failed"
for _ in $(seq 50); do
  if anorand models show fraud --alias production --address "127.0.0.1:$serving_port" 2>/dev/null |
    grep -Eq '^fraud +2 +READY'; then
    break
  fi
  sleep 0.2
done
anorand models show fraud --alias production --address "127.0.0.1:$serving_port" 2>/dev/null |
  grep -Eq '^fraud +2 +READY' || fail "serving: production does not reach version 2 in 10 s"
compgen -G "$trainer_jobs/*.json" >/dev/null || fail "trainer: no job record in its --jobs_dir"
if compgen -G "$store/.jobs/*.json" >/dev/null; then
  fail "trainer: job records in the serving replicas' $store/.jobs"
fi
echo "ok   trainer: Training API (--data_dir) trained fraud/2, promoted; the serving replica follows;" \
  "records in the trainer's --jobs_dir"
stop "$trainer_pid" trainer
stop "$serving_pid" serving

# 4. compose's seed service: seeds once, then leaves the store alone.
seed_env=(ANORAND_MODEL_DIR="$work/seed/models" DEMO_DATA_DIR="$work/seed/data"
  DEMO_TRAIN_ROWS=1500 DEMO_STREAM_ROWS=200 DEMO_FIT_THREADS=1 OMP_NUM_THREADS=1)
env "${seed_env[@]}" seed-demo >"$work/seed.log" 2>&1 || fail "seed-demo failed"
[[ -f "$work/seed/models/demo/1/model.anorand" ]] || fail "seed-demo published no demo/1"
grep -q '"production": 1' "$work/seed/models/demo/aliases.json" || fail "seed-demo set no alias"
env "${seed_env[@]}" seed-demo >"$work/seed2.log" 2>&1 || fail "seed-demo failed the second time"
grep -q "nothing to do" "$work/seed2.log" || fail "seed-demo reseeded a seeded store"
[[ ! -e "$work/seed/models/demo/2" ]] || fail "seed-demo published a second version"
echo "ok   seed-demo: demo/1 with alias production, then nothing to do"
echo "deploy smoke: all passed"
