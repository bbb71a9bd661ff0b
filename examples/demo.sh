#!/usr/bin/env bash
# A real end-to-end session on the default JSONL store, in a scratch workspace:
# register experiments, record results (one failure), find, compare, queue, verify.
set -euo pipefail
workspace=$(mktemp -d)
cd "$workspace"
echo "# workspace: $workspace"
# Echo each command as it could be pasted back: plain words bare, anything else in single quotes.
quoted() { case $1 in '' | *[!A-Za-z0-9_./:=,@+%-]*) printf " '%s'" "${1//\'/\'\\\'\'}" ;; *) printf ' %s' "$1" ;; esac; }
run() { echo; printf '$'; for word in "$@"; do quoted "$word"; done; echo; "$@"; }

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
# A real run: a tiny pure-Python training loop logging through the API, run by `exp run`.
cat > train.py <<'PY'
import math, random, sys
import expledger

lr = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
random.seed(0)
data = [(x, 1.0 if x > 0.3 else 0.0) for x in (random.uniform(-1, 1) for _ in range(200))]
w = b = 0.0
run = expledger.start(name="logistic toy", task="toy", params={"lr": lr})
for step in range(300):
    grad_w = grad_b = loss = 0.0
    for x, y in data:
        p = 1 / (1 + math.exp(-(w * x + b)))
        loss -= y * math.log(p + 1e-9) + (1 - y) * math.log(1 - p + 1e-9)
        grad_w += (p - y) * x
        grad_b += p - y
    w -= lr * grad_w / len(data)
    b -= lr * grad_b / len(data)
    accuracy = sum((w * x + b > 0) == (y == 1.0) for x, y in data) / len(data)
    run.log({"loss": loss / len(data), "accuracy": accuracy}, step=step)
print(f"final accuracy {accuracy:.3f}")
PY
run exp run --name "toy logistic regression" --task toy --params '{"lr": 0.5}' -- python3 train.py 0.5
run exp show EXP-005

# Queue two more and let a worker run them, as a GPU box would.
run exp add --name "toy lr 2.0" --task toy --params '{"lr": 2.0}' --command "python3 train.py 2.0"
run exp add --name "toy lr 0.05" --task toy --params '{"lr": 0.05}' --command "python3 train.py 0.05" --priority 1
run exp worker --until-empty
run exp compare --where 'task = toy' --lower loss

run exp list
run exp list --where 'params.layers < 10 and metrics.accuracy > 0.9' --columns id,name,params.method,metrics.accuracy
run exp compare EXP-001 EXP-002
run exp check --task layer-analysis --model whisper-large --params '{"layers": 32}'
run exp queue
run exp show EXP-003
run exp export --format md
run exp doctor
echo
echo "# the ledger is one JSONL file, a line per change: $workspace/memory/experiments/experiments.jsonl"
echo "# (kept for you to explore: cd $workspace; exp show EXP-001; exp list --json)"
