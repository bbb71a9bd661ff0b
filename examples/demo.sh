#!/usr/bin/env bash
# A real end-to-end session on the default JSONL store, in a scratch workspace:
# register experiments, record results (one failure), find, compare, queue, verify.
set -euo pipefail
workspace=$(mktemp -d)
cd "$workspace"
echo "# workspace: $workspace"
run() { echo; printf '$'; printf ' %q' "$@"; echo; "$@"; }

run exp add --name "whisper logit lens" --task layer-analysis --model whisper-base \
    --params '{"layers": 6, "method": "logit_lens"}' --command "python3 whisper_logit_lens.py" --machine lab
run exp add --name "whisper CKA" --task layer-analysis --model whisper-base \
    --params '{"layers": 6, "method": "cka"}' --command "python3 whisper_cka.py" --machine lab --tag baseline
run exp add --name "whisper-large probe" --task layer-analysis --model whisper-large \
    --params '{"layers": 32}' --command "python3 probe.py" --machine mac
run exp start EXP-001
run exp result EXP-001 --status success --metrics '{"accuracy": 0.934, "layers_identified": 2}' \
    --summary "logit lens 顯示兩群：聲學 (0-2) 與語義 (3-5)"
run exp result EXP-002 --status success --metrics '{"accuracy": 0.912, "layers_identified": 3}' \
    --summary "CKA splits the encoder in three"
run exp result EXP-003 --status failed --summary "OOM on whisper-large, need gradient checkpointing"
run exp add --name "whisper-large probe, again" --task layer-analysis --model whisper-large --params '{"layers": 32.0}'
run exp list
run exp list --where 'params.layers < 10 and metrics.accuracy > 0.9' --columns id,name,params.method,metrics.accuracy
run exp compare EXP-001 EXP-002
run exp check --task layer-analysis --model whisper-large --params '{"layers": 32}'
run exp queue
run exp show EXP-003
run exp export --format md
run exp doctor
echo
echo "# the ledger itself (kept for you to explore: cd $workspace):"
tail -n 2 memory/experiments/experiments.jsonl
