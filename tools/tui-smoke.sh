#!/usr/bin/env bash
# Smoke test of `sfc tui` in a real terminal: starts it in a detached tmux window (80×24) on
# fixtures/small-a with a small circuit, sends keys, captures the screen with capture-pane and
# checks for expected text — browsing, the node pane, the filter, live steering with the real
# model, the help, a resize, a discovery job, and quitting with exit code 0. Exits non-zero on
# the first failed check (printing the expected text and the screen); skips (exit 0) when tmux is
# not installed.
#
#   tools/tui-smoke.sh                    run the checks
#   TUI_SMOKE_CAPTURES=DIR tools/tui-smoke.sh   also save the screens (text) into DIR
set -euo pipefail

if ! command -v tmux >/dev/null 2>&1; then
  echo "tui-smoke: SKIPPED — tmux is not installed (Debian/Ubuntu: apt-get install tmux)"
  exit 0
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOCKET="sfc-tui-smoke-$$"             # a private tmux server: no clash with the user's sessions
TMUX_CMD=(tmux -L "$SOCKET")
TARGET="smoke:0"
WORK=$(mktemp -d)
CAPTURES=${TUI_SMOKE_CAPTURES:-}
TIMEOUT=${TUI_SMOKE_TIMEOUT:-60}       # seconds per wait (the first steering run loads the model)
CHECKS=0

cleanup() {
  "${TMUX_CMD[@]}" kill-server >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

screen() { "${TMUX_CMD[@]}" capture-pane -p -t "$TARGET"; }

fail() {
  echo "tui-smoke: FAILED — $1" >&2
  echo "----- screen -----" >&2
  screen >&2 || true
  echo "------------------" >&2
  exit 1
}

# wait_for TEXT [TIMEOUT]: until the screen contains TEXT (fixed string).
wait_for() {
  local text=$1 limit=${2:-$TIMEOUT} start=$SECONDS
  while ! screen | grep -qF -- "$text"; do
    if (( SECONDS - start >= limit )); then fail "expected \"$text\" within ${limit}s"; fi
    sleep 0.2
  done
  CHECKS=$((CHECKS + 1))
}

# absent TEXT: the screen must not contain TEXT now.
absent() {
  if screen | grep -qF -- "$1"; then fail "did not expect \"$1\""; fi
  CHECKS=$((CHECKS + 1))
}

keys() { "${TMUX_CMD[@]}" send-keys -t "$TARGET" "$@"; sleep 0.3; }

save() { if [[ -n "$CAPTURES" ]]; then mkdir -p "$CAPTURES"; screen > "$CAPTURES/$1.txt"; fi; }

# The CLI from source (as test/src/cli-run.ts runs it), so the check never uses a stale build.
# CI=0: Ink renders nothing until exit when it believes it runs in CI.
SFC="node --conditions=@sfc/source --import tsx packages/cli-tui/src/main.ts"
ARGS="tui packages/cli-tui/src/tui/test-data/small-a-circuit.json \
  --model fixtures/small-a --dictionaries fixtures/small-a/dictionaries --data fixtures/small-a/data.jsonl \
  --num-examples 4 --out $WORK/found.json \
  --annotations packages/cli-tui/src/tui/test-data/annotations.jsonl --model-id pythia-70m-deduped"
"${TMUX_CMD[@]}" -f /dev/null new-session -d -s smoke -x 80 -y 24 \
  "cd '$ROOT' && CI=0 CONTINUOUS_INTEGRATION=0 TERM=xterm-256color $SFC $ARGS; echo \"sfc tui exited with \$?\"; sleep 600"

# Start: the circuit, the chart, the first node selected, the prompt from the data file.
wait_for "Circuit 17 nodes"
wait_for "Effects by submodule"
wait_for "› embed/err"
wait_for 'Prompt "·have" vs "·has"'
wait_for "The parents that the guards know"
wait_for "SAE error nodes have no Neuronpedia page"
save start

# Cursor and node pane.
keys j j
wait_for "› embed/54"
wait_for "Node embed/54"
wait_for "“singular noun token”"
wait_for "https://www.neuronpedia.org/pythia-70m-dedup"

# Filter by annotation text.
keys / p l u r a l Enter
wait_for "› resid_0/116"
wait_for "resid_1/97"
absent "embed/err"
keys /
keys Escape                           # alone: ESC followed by a key reads as Alt+key
keys / p l u r a l Space s u b Enter
wait_for "› resid_1/8"
absent "resid_1/97"

# Pick, steer live with the real model: scale, then add (which moves even an inactive feature).
keys Space
wait_for "picks (1) resid_1/8"
wait_for "showing 1 node scale ×2"
wait_for "Result logit-diff"
keys a
wait_for "showing 1 node add +2·dec"
wait_for "before …"
wait_for "after  …"
absent "Δ+0.000"
save steered
keys +
wait_for "showing 1 node add +2.5·dec"
keys x
wait_for "showing 1 node ablate →0"

# Help, and any key closes it.
keys '?'
wait_for "Keys  any key closes"
wait_for "q Ctrl+C"
save help
keys j
absent "any key closes"

# Clear the filter, resize: the taller window lists the last layer and every submodule's bar.
keys /
keys Escape
wait_for "Circuit 17 nodes  / filter"
wait_for "›●resid_1/8"                   # the selection (picked) survives the filter change
save overview
"${TMUX_CMD[@]}" resize-window -t smoke -x 120 -y 40
wait_for "resid_1/8"
wait_for "mlp_1"
save resized
"${TMUX_CMD[@]}" resize-window -t smoke -x 80 -y 24
wait_for "Circuit 17 nodes"

# Discovery as a job: progress, then the new circuit written to --out.
keys D
wait_for "Discovery"
wait_for "Discovery done in" 300
wait_for "found.json"
[[ -s "$WORK/found.json" ]] || fail "discovery did not write $WORK/found.json"
save discovered
keys Escape
wait_for "Result"

# Quit.
keys q
wait_for "sfc tui exited with 0"

# The discovered circuit knows its model and SAEs (issue 15). A config file naming another model
# is refused before anything loads, naming both models.
grep -q '"hash":"sampled-sha256:' "$WORK/found.json" || fail "the discovered circuit records no model hash"
printf '{"model": "%s"}\n' "$ROOT/fixtures/models/gpt2-a" > "$WORK/other.config.json"
TARGET="refused:0"
"${TMUX_CMD[@]}" new-session -d -s refused -x 500 -y 24 \
  "cd '$ROOT' && CI=0 CONTINUOUS_INTEGRATION=0 TERM=xterm-256color $SFC tui $WORK/found.json --config $WORK/other.config.json; echo \"sfc tui exited with \$?\"; sleep 600"
wait_for "sfc tui exited with 2"
wait_for "names model $ROOT/fixtures/models/gpt2-a"
wait_for "was discovered on model small-a at $ROOT/fixtures/small-a (content hash"

# Top contexts of the circuit's features over a text (the circuit's own model and SAEs).
(cd "$ROOT" && $SFC dict top --circuit "$WORK/found.json" --corpus fixtures/small-a/corpus.txt \
  --top-contexts "$WORK/top" -k 3 --quiet > "$WORK/top.txt") || fail "sfc dict top failed: $(cat "$WORK/top.txt")"
TOP_VALUE=$(node -e '
  const fs = require("fs"), dir = process.argv[1];
  for (const f of fs.readdirSync(dir)) {
    const t = JSON.parse(fs.readFileSync(dir + "/" + f, "utf8"));
    if (t.submodule === "attn_1" && t.features["105"] && t.features["105"].length) { console.log(t.features["105"][0].value.toPrecision(3)); process.exit(0); }
  }
  process.exit(1);' "$WORK/top") || fail "sfc dict top wrote no contexts for attn_1/105"

# Reopen it with no model flags: the header names its model, the node pane shows the annotation
# and the top contexts, and steering runs the circuit's own model.
TARGET="reopen:0"
ARGS2="tui $WORK/found.json --top-contexts $WORK/top \
  --annotations packages/cli-tui/src/tui/test-data/annotations.jsonl \
  --prompt 'The parents that the guards know' --answer ' have' --patch-answer ' has'"
"${TMUX_CMD[@]}" new-session -d -s reopen -x 80 -y 24 \
  "cd '$ROOT' && CI=0 CONTINUOUS_INTEGRATION=0 TERM=xterm-256color $SFC $ARGS2; echo \"sfc tui exited with \$?\"; sleep 600"
wait_for "small-a · backend"
keys / a t t e n d s Enter
wait_for "Node attn_1/105"
wait_for "“attends to the subject”"
wait_for "$TOP_VALUE "
save reopened
keys Space
wait_for "picks (1) attn_1/105"
wait_for "Result logit-diff"
keys q
wait_for "sfc tui exited with 0"
echo "tui-smoke: OK — $CHECKS checks passed"
