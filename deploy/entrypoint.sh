#!/bin/sh
# Container entry point. When CHECKPOINT_URL is set and <MODELS_DIR>/<MODEL_NAME>/model.json is
# missing, it converts the checkpoint into the models folder first (verifying CHECKPOINT_SHA256
# when given), then it replaces itself with the stylegan-serve CLI, so the server is PID 1 and
# receives SIGTERM directly. Arguments are passed to the CLI unchanged (default: serve).
#
# Variables:
#   CHECKPOINT_URL      http(s) URL or file path of a StyleGAN2 checkpoint (optional).
#   CHECKPOINT_SHA256   Expected sha256 of that file in hex (optional, recommended).
#   MODEL_NAME          Folder name for the converted model, required with CHECKPOINT_URL.
#                       It also becomes MODEL (the default model of `serve`) unless MODEL is set.
#   MODELS_DIR          Models folder (default /models).
#   STYLEGAN_SERVE_CLI  Command that runs the CLI (default: node /app/dist/cli.js).
set -eu

cli="${STYLEGAN_SERVE_CLI:-node /app/dist/cli.js}"
models_dir="${MODELS_DIR:-/models}"
# `serve` reads the same variable, so the conversion and the server use one folder.
export MODELS_DIR="$models_dir"

log() {
  printf 'entrypoint: %s\n' "$*" >&2
}

if [ -n "${CHECKPOINT_URL:-}" ]; then
  if [ -z "${MODEL_NAME:-}" ]; then
    log "CHECKPOINT_URL is set but MODEL_NAME is empty; set MODEL_NAME to the folder name for the converted model"
    exit 2
  fi
  if [ -f "$models_dir/$MODEL_NAME/model.json" ]; then
    log "model $MODEL_NAME already in $models_dir; skipping the conversion of $CHECKPOINT_URL"
  else
    log "converting $CHECKPOINT_URL into $models_dir/$MODEL_NAME"
    if [ -n "${CHECKPOINT_SHA256:-}" ]; then
      $cli convert "$CHECKPOINT_URL" --name "$MODEL_NAME" --models-dir "$models_dir" --sha256 "$CHECKPOINT_SHA256"
    else
      log "CHECKPOINT_SHA256 is not set, so the downloaded file is not verified"
      $cli convert "$CHECKPOINT_URL" --name "$MODEL_NAME" --models-dir "$models_dir"
    fi
  fi
  export MODEL="${MODEL:-$MODEL_NAME}"
fi

if [ "$#" -eq 0 ]; then
  set -- serve
fi
# $cli is split into words on purpose ("node /app/dist/cli.js").
exec $cli "$@"
