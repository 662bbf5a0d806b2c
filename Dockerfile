# syntax=docker/dockerfile:1
#
# stylegan-serve on a CUDA 12 + cuDNN 9 runtime image with Node 20.
#
#   docker build -t stylegan-serve .
#   docker run --gpus all -p 8080:8080 -v stylegan-models:/models stylegan-serve
#
# Optional: convert a checkpoint into the image at build time
#   docker build --build-arg CHECKPOINT_URL=https://.../ffhq.pkl --build-arg CHECKPOINT_SHA256=<hex> \
#                --build-arg MODEL_NAME=ffhq -t stylegan-serve:ffhq .
# or at start time into the models volume (deploy/entrypoint.sh does it when the folder is missing)
#   docker run --gpus all -e CHECKPOINT_URL=... -e CHECKPOINT_SHA256=... -e MODEL_NAME=ffhq ... stylegan-serve
#
# docs/deploy.md explains the settings, the GPU requirements and the Kubernetes manifests.

# ONNX Runtime 1.19 and later GPU builds need CUDA 12.x and cuDNN 9.x.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
# build: install dependencies, compile TypeScript, write the sample model, fetch the CUDA provider
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# `npm ci` runs the package's `prepare` script (tsc build + the offline sample model), so the
# sources must be in place first. ONNXRUNTIME_NODE_INSTALL=skip keeps the onnxruntime-node
# postinstall from downloading anything here; the CUDA provider is installed explicitly below.
COPY package.json package-lock.json .npmrc tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && test -f dist/cli.js && test -f models/sample/model.json

# The ONNX Runtime CUDA execution provider is not in the npm package. Its install script fetches
# the NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux at exactly the onnxruntime-node version and
# copies libonnxruntime_providers_{shared,cuda,tensorrt}.so next to the Node binding. npm 11 skips
# dependency install scripts by default, so the script is run here by hand.
# NOTE: if nuget.org has no Gpu.Linux package of that exact version, this step fails with "Failed
# to find specific package versions"; then pin onnxruntime-node to a version that has one.
# Build with --build-arg ONNXRUNTIME_NODE_INSTALL=skip for a CPU-only image.
ARG ONNXRUNTIME_NODE_INSTALL=cuda12
RUN if [ "$ONNXRUNTIME_NODE_INSTALL" != "skip" ]; then \
      ONNXRUNTIME_NODE_INSTALL="$ONNXRUNTIME_NODE_INSTALL" node node_modules/onnxruntime-node/script/install.js \
      && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so; \
    fi

# ---------------------------------------------------------------------------------------------
# models: optional build-time conversion of one checkpoint, next to the sample model
# ---------------------------------------------------------------------------------------------
FROM build AS models
ARG CHECKPOINT_URL=""
ARG CHECKPOINT_SHA256=""
ARG MODEL_NAME=""
RUN if [ -n "$CHECKPOINT_URL" ]; then \
      if [ -z "$MODEL_NAME" ]; then echo "set --build-arg MODEL_NAME=<name> together with CHECKPOINT_URL" >&2; exit 2; fi; \
      if [ -z "$CHECKPOINT_SHA256" ]; then echo "warning: CHECKPOINT_SHA256 is not set, so the checkpoint is not verified" >&2; fi; \
      node dist/cli.js convert "$CHECKPOINT_URL" --name "$MODEL_NAME" --models-dir models \
        ${CHECKPOINT_SHA256:+--sha256 "$CHECKPOINT_SHA256"}; \
    fi

# ---------------------------------------------------------------------------------------------
# runtime: CUDA + cuDNN libraries, Node 20, the built app, a non-root user
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS node
FROM ${CUDA_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Node 20 from the official image: a self-contained binary that needs only glibc and libstdc++.
COPY --from=node /usr/local/bin/node /usr/local/bin/node

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /models && chown app:app /models

WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY public ./public
COPY deploy/entrypoint.sh /usr/local/bin/stylegan-serve-entrypoint
COPY --from=models --chown=app:app /app/models /models

# Fail the build when the CUDA provider cannot find one of its libraries (CUDA 12 runtime, cuBLAS,
# cuFFT, cuRAND, cuDNN 9). libcuda.so.1 is the driver: the NVIDIA container toolkit mounts it
# from the host when the container starts, so it may be missing here.
ARG ONNXRUNTIME_NODE_INSTALL=cuda12
RUN if [ "$ONNXRUNTIME_NODE_INSTALL" != "skip" ]; then \
      provider=node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so; \
      ldd "$provider" > /tmp/ldd.txt \
      && if grep "not found" /tmp/ldd.txt | grep -v "libcuda.so.1"; then \
           echo "the CUDA provider is missing the libraries listed above; check CUDA_IMAGE (CUDA 12 + cuDNN 9)" >&2; exit 1; \
         fi; \
      rm /tmp/ldd.txt; \
    fi \
 && node --input-type=module -e "await import('onnxruntime-node'); await import('sharp')"

ARG MODEL_NAME=""
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    MODELS_DIR=/models \
    MODEL=${MODEL_NAME:-sample} \
    EXECUTION_PROVIDER=auto

VOLUME ["/models"]
EXPOSE 8080
USER app

# Ready = models loaded and warmed, not draining. The start period covers model loading and warm-up.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# SIGTERM (Docker's and Kubernetes' stop signal) drains: readiness turns 503, new requests get 503,
# in-flight requests get DRAIN_TIMEOUT_MS to finish, then the process exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/stylegan-serve-entrypoint"]
CMD ["serve"]
