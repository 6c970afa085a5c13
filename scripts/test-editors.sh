#!/usr/bin/env bash
# Runs every editor client test against the real `arca lsp`:
#   - VS Code extension: tsc type-check, unit tests, integration tests (node --test)
#   - VS Code extension end to end: the packaged .vsix in code-server, driven
#     through Chromium by Playwright (editors/vscode/test/e2e/e2e.py; needs
#     .ci/vscode-setup.sh and a Docker engine); screenshots in
#     $ARCA_E2E_SHOTS (default target/e2e-screenshots)
#   - Neovim plugin: unit and integration tests in headless Neovim
# The server binary is $ARCA_BIN (default: target/debug/arca, built here with
# `cargo build` when missing). Needs nvim and editors/vscode/node_modules
# (.ci/editors-setup.sh installs both). Exits non-zero on any failure and
# ends with one line `N passed, N failed`.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

export ARCA_BIN="${ARCA_BIN:-$repo/target/debug/arca}"
if [ ! -x "$ARCA_BIN" ]; then
    echo "==> cargo build (no $ARCA_BIN yet)"
    cargo build --quiet || { echo "cargo build failed"; echo "0 passed, 1 failed"; exit 1; }
fi

passed=0
failed=0
status=0

# count SUITE LOG: adds the `# pass N` / `# fail N` lines of a TAP log.
count() {
    local p f
    p=$(grep -E '^# pass [0-9]+' "$2" | awk '{s+=$3} END {print s+0}')
    f=$(grep -E '^# fail [0-9]+' "$2" | awk '{s+=$3} END {print s+0}')
    echo "    $1: $p passed, $f failed" | sed 's/ passed, / ok, /; s/ failed$/ not ok/'
    passed=$((passed + p))
    failed=$((failed + f))
}

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

echo "==> [${SECONDS}s] vscode: npm dependencies"
if [ ! -d editors/vscode/node_modules ]; then
    (cd editors/vscode && npm ci --no-audit --no-fund) || status=1
fi

echo "==> [${SECONDS}s] vscode: tsc --noEmit"
if (cd editors/vscode && npx --no-install tsc --noEmit -p .); then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); status=1
fi

echo "==> [${SECONDS}s] vscode: unit and integration tests (node --test)"
if (cd editors/vscode && rm -rf out && npx --no-install tsc -p tsconfig.test.json); then
    (cd editors/vscode && timeout 300 node --test --test-reporter=tap out/test/unit/ out/test/integration/) >"$log/vscode.tap" 2>&1
    rc=$?
    grep -E '^(not )?ok |^# (pass|fail)|^  error:|^    (error|at )' "$log/vscode.tap" | grep -v '^    at ' | head -200
    count vscode "$log/vscode.tap"
    if [ $rc -ne 0 ] && ! grep -qE '^# fail [1-9]' "$log/vscode.tap"; then failed=$((failed + 1)); fi
    [ $rc -eq 0 ] || status=1
else
    failed=$((failed + 1)); status=1
fi

echo "==> [${SECONDS}s] vscode: npm run package (.vsix)"
if (cd editors/vscode && rm -f arca.vsix && timeout 300 npm run --silent package >"$log/package.log" 2>&1) \
    && unzip -l editors/vscode/arca.vsix >"$log/vsix.txt" \
    && grep -q 'extension/dist/extension.js' "$log/vsix.txt" \
    && grep -q 'extension/schemas/arca-config.schema.json' "$log/vsix.txt"; then
    echo "    arca.vsix: $(tail -1 "$log/vsix.txt")"
    passed=$((passed + 1))
else
    tail -20 "$log/package.log"
    echo "    arca.vsix is missing or lacks dist/extension.js or the schema"
    failed=$((failed + 1)); status=1
fi

echo "==> [${SECONDS}s] vscode: end to end in a real VS Code (code-server + Chromium via Playwright)"
shots="${ARCA_E2E_SHOTS:-$repo/target/e2e-screenshots}"
echo "    screenshots: $shots"
ARCA_VSIX="$repo/editors/vscode/arca.vsix" ARCA_E2E_SHOTS="$shots" \
    timeout 1500 python3 editors/vscode/test/e2e/e2e.py >"$log/e2e.tap" 2>"$log/e2e.err" </dev/null
rc=$?
cat "$log/e2e.tap"
before=$((passed + failed))
count "vscode e2e" "$log/e2e.tap"
if [ $rc -ne 0 ]; then
    status=1
    if ! grep -qE '^# fail [1-9]' "$log/e2e.tap"; then
        echo "    the end-to-end runner exited with $rc before reporting; stderr:"; tail -20 "$log/e2e.err"
        failed=$((failed + 1))
    fi
elif [ $((passed + failed)) -eq "$before" ]; then
    echo "    the end-to-end runner found no test"
    failed=$((failed + 1)); status=1
fi

nvim_run() {
    local name=$1 script=$2
    echo "==> nvim: $name"
    timeout 300 nvim --headless -u NONE -i NONE \
        --cmd "set rtp^=$repo/editors/nvim" --cmd "filetype on" --cmd "runtime plugin/arca.lua" \
        -c "luafile $repo/editors/nvim/tests/$script" >"$log/$name.tap" 2>"$log/$name.err" </dev/null
    local rc=$?
    cat "$log/$name.tap"
    count "nvim $name" "$log/$name.tap"
    if [ $rc -ne 0 ]; then
        status=1
        if ! grep -qE '^# fail [1-9]' "$log/$name.tap"; then
            echo "    nvim exited with $rc before reporting; stderr:"; tail -20 "$log/$name.err"
            failed=$((failed + 1))
        fi
    fi
}

if command -v nvim >/dev/null 2>&1; then
    nvim --version | head -1
    nvim_run unit unit.lua
    nvim_run integration integration.lua
    nvim_run run run.lua
else
    echo "nvim not found: run .ci/editors-setup.sh"
    failed=$((failed + 1)); status=1
fi

[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
