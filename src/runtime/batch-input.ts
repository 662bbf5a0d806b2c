/**
 * Packs the images of one batch into the typed arrays the inference worker reads, and checks
 * `ImageSpec`s against a model at submission so the worker never receives a malformed row.
 */

import type { ModelManifest } from '../graph/model-manifest.js';
import type { ImageSpec } from './contract.js';
import { InvalidInputError } from './errors.js';
import { assertSeed } from './seeds.js';
import { noiseModeCode, type BatchInput } from './worker-protocol.js';

/** Throws InvalidInputError naming the image and the expected size or range. */
export function validateImageSpec(spec: ImageSpec, index: number, manifest: ModelManifest): void {
  const { zDim, cDim, numWs, wDim } = manifest.arch;
  const where = `image ${index}`;
  const latent = spec.latent;
  if (latent.kind === 'z') {
    if (!(latent.z instanceof Float32Array) || latent.z.length !== zDim) {
      throw new InvalidInputError(`${where}: z has ${latent.z?.length} values, model ${manifest.name} expects zDim = ${zDim}`);
    }
    if (cDim > 0 && (!(latent.c instanceof Float32Array) || latent.c.length !== cDim)) {
      throw new InvalidInputError(`${where}: label c has ${latent.c?.length ?? 0} values, model ${manifest.name} is conditional and expects cDim = ${cDim}`);
    }
    if (cDim === 0 && latent.c !== undefined && latent.c.length > 0) {
      throw new InvalidInputError(`${where}: model ${manifest.name} is unconditional, remove the label c`);
    }
    if (!Number.isFinite(latent.psi)) throw new InvalidInputError(`${where}: psi is ${latent.psi}, expected a finite number`);
    const cutoff = latent.truncationCutoff;
    if (cutoff !== undefined && (!Number.isInteger(cutoff) || cutoff < 0)) {
      throw new InvalidInputError(`${where}: truncation cutoff is ${cutoff}, expected an integer in [0, ${numWs}]`);
    }
  } else if (latent.kind === 'ws') {
    if (!(latent.ws instanceof Float32Array) || latent.ws.length !== numWs * wDim) {
      throw new InvalidInputError(`${where}: ws has ${latent.ws?.length} values, model ${manifest.name} expects numWs x wDim = ${numWs} x ${wDim} = ${numWs * wDim}`);
    }
  } else {
    throw new InvalidInputError(`${where}: latent kind ${(latent as { kind: unknown }).kind} is unknown, expected z or ws`);
  }
  if (!(spec.noiseMode in noiseModeCode)) {
    throw new InvalidInputError(`${where}: noise mode ${spec.noiseMode} is unknown, expected const, random or none`);
  }
  if (spec.noiseMode === 'random') {
    try {
      assertSeed(spec.noiseSeed ?? Number.NaN, 'noise seed');
    } catch (err) {
      throw new InvalidInputError(`${where}: ${(err as Error).message}; noise mode random needs one`);
    }
  }
}

/** Packs `specs` (rows in order) into a batch of size `bucket`. */
export function packBatch(manifest: ModelManifest, specs: readonly ImageSpec[], bucket: number): BatchInput {
  const { zDim, cDim, numWs, wDim } = manifest.arch;
  const rows = specs.length;
  const zRowList: number[] = [];
  specs.forEach((spec, row) => {
    if (spec.latent.kind === 'z') zRowList.push(row);
  });
  const nz = zRowList.length;
  const batch: BatchInput = {
    model: manifest.name,
    rows,
    bucket,
    zRows: Int32Array.from(zRowList), // [nz]
    z: new Float32Array(nz * zDim), // [nz, zDim]
    c: new Float32Array(nz * cDim), // [nz, cDim]
    psi: new Float32Array(nz), // [nz]
    cutoff: new Int32Array(nz), // [nz]
    ws: new Float32Array(rows * numWs * wDim), // [rows, numWs, wDim]
    noiseModes: new Uint8Array(rows), // [rows]
    noiseSeeds: new Float64Array(rows), // [rows]
  };
  let zi = 0;
  specs.forEach((spec, row) => {
    const latent = spec.latent;
    if (latent.kind === 'z') {
      batch.z.set(latent.z, zi * zDim);
      if (cDim > 0 && latent.c) batch.c.set(latent.c, zi * cDim);
      batch.psi[zi] = latent.psi;
      batch.cutoff[zi] = Math.min(latent.truncationCutoff ?? numWs, numWs);
      zi++;
    } else {
      batch.ws.set(latent.ws, row * numWs * wDim);
    }
    batch.noiseModes[row] = noiseModeCode[spec.noiseMode];
    batch.noiseSeeds[row] = spec.noiseSeed ?? 0;
  });
  return batch;
}
