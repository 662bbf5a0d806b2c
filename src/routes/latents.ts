/**
 * Turns the latent, label and noise fields of a request into runtime `ImageSpec`s for one model,
 * checking every model-dependent constraint (vector lengths, labels, cutoff) with errors that name
 * the field, the value and the expected size.
 */

import type { ModelManifest } from '../graph/model-manifest.js';
import type { ImageSpec, NoiseMode } from '../runtime/contract.js';
import { broadcastW, oneHot, truncateWs } from '../runtime/latent-math.js';
import { zFromSeed } from '../runtime/seeds.js';
import { HttpProblem, invalidField } from './problem.js';

export interface LatentRequest {
  seeds?: number[];
  z?: number[][];
  w?: number[][];
  ws?: number[][][];
}

export interface RenderRequest {
  psi: number;
  truncation_cutoff?: number;
  class?: number;
  label?: number[];
  noise_mode: NoiseMode;
  noise_seed?: number;
}

/** A resolved image plus the facts its response headers report. */
export interface ResolvedImage {
  spec: ImageSpec;
  /** The seed it came from, when it came from a seed. */
  seed?: number;
}

/** Returns the label `[cDim]` for the request, or undefined for unconditional models. */
export function resolveLabel(manifest: ModelManifest, request: RenderRequest, pointerPrefix = ''): Float32Array | undefined {
  const { cDim } = manifest.arch;
  if (request.class !== undefined && request.label !== undefined) {
    throw invalidField(`${pointerPrefix}/label`, 'give either `class` or `label`, not both');
  }
  if (cDim === 0) {
    if (request.class !== undefined) {
      throw invalidField(`${pointerPrefix}/class`, `model "${manifest.name}" is unconditional (cDim 0); remove \`class\``);
    }
    if (request.label !== undefined) {
      throw invalidField(`${pointerPrefix}/label`, `model "${manifest.name}" is unconditional (cDim 0); remove \`label\``);
    }
    return undefined;
  }
  if (request.class !== undefined) {
    if (request.class >= cDim) {
      throw invalidField(`${pointerPrefix}/class`, `expected a class index in [0, ${cDim - 1}], got ${request.class}`);
    }
    return oneHot(request.class, cDim);
  }
  if (request.label !== undefined) {
    if (request.label.length !== cDim) {
      throw invalidField(`${pointerPrefix}/label`, `expected ${cDim} values (the model's cDim), got ${request.label.length}`);
    }
    return Float32Array.from(request.label);
  }
  throw invalidField(
    `${pointerPrefix}/class`,
    `model "${manifest.name}" is conditional (cDim ${cDim}); give \`class\` (0..${cDim - 1}) or a \`label\` of length ${cDim}`,
  );
}

/** Checks `truncation_cutoff` against the model's numWs. */
export function checkCutoff(manifest: ModelManifest, cutoff: number | undefined, pointerPrefix = ''): void {
  if (cutoff !== undefined && cutoff > manifest.arch.numWs) {
    throw invalidField(
      `${pointerPrefix}/truncation_cutoff`,
      `expected an integer in [0, ${manifest.arch.numWs}] (the model's numWs), got ${cutoff}`,
    );
  }
}

/** Resolves exactly one of seeds / z / w / ws into one `ImageSpec` per image. */
export function resolveImages(
  manifest: ModelManifest,
  latents: LatentRequest,
  render: RenderRequest,
  limit: { max: number; setting: string },
): ResolvedImage[] {
  const given = (['seeds', 'z', 'w', 'ws'] as const).filter((key) => latents[key] !== undefined);
  if (given.length !== 1) {
    throw new HttpProblem(422, 'validation', `give exactly one of seeds, z, w or ws; got ${given.length === 0 ? 'none' : given.join(', ')}`, {
      errors: [{ pointer: '', message: 'expected exactly one of seeds, z, w, ws' }],
    });
  }
  const key = given[0];
  const count = (latents[key] as unknown[]).length;
  if (count > limit.max) {
    throw invalidField(`/${key}`, `at most ${limit.max} latents (the server's ${limit.setting}), got ${count}`);
  }
  checkCutoff(manifest, render.truncation_cutoff);
  const mapsLatents = key === 'seeds' || key === 'z';
  if (!mapsLatents && (render.class !== undefined || render.label !== undefined)) {
    const field = render.class !== undefined ? 'class' : 'label';
    throw invalidField(`/${field}`, `\`${field}\` conditions the mapping network, which ${key} input skips; remove it or send seeds or z`);
  }
  const c = mapsLatents ? resolveLabel(manifest, render) : undefined;
  // Image i of a request uses noise_seed + i, wrapped into the uint32 seed range.
  const noiseFor = (index: number, seed?: number) => {
    if (render.noise_mode !== 'random') return { noiseMode: render.noise_mode };
    const noiseSeed = render.noise_seed === undefined ? (seed ?? 0) : (render.noise_seed + index) % 2 ** 32;
    return { noiseMode: render.noise_mode, noiseSeed };
  };
  const { zDim, wDim, numWs } = manifest.arch;

  if (key === 'seeds') {
    return latents.seeds!.map((seed, i) => ({
      seed,
      spec: {
        latent: { kind: 'z', z: zFromSeed(seed, zDim), c, psi: render.psi, truncationCutoff: render.truncation_cutoff },
        ...noiseFor(i, seed),
      },
    }));
  }
  if (key === 'z') {
    return latents.z!.map((z, i) => {
      if (z.length !== zDim) throw invalidField(`/z/${i}`, `expected ${zDim} values (the model's zDim), got ${z.length}`);
      return {
        spec: {
          latent: { kind: 'z', z: Float32Array.from(z), c, psi: render.psi, truncationCutoff: render.truncation_cutoff },
          ...noiseFor(i),
        },
      };
    });
  }
  const wAvg = Float32Array.from(manifest.wAvg);
  const rows: Float32Array[] =
    key === 'w'
      ? latents.w!.map((w, i) => {
          if (w.length !== wDim) throw invalidField(`/w/${i}`, `expected ${wDim} values (the model's wDim), got ${w.length}`);
          return broadcastW(Float32Array.from(w), numWs);
        })
      : latents.ws!.map((ws, i) => {
          if (ws.length !== numWs) throw invalidField(`/ws/${i}`, `expected ${numWs} rows (the model's numWs), got ${ws.length}`);
          const flat = new Float32Array(numWs * wDim); // [numWs, wDim]
          ws.forEach((row, l) => {
            if (row.length !== wDim) throw invalidField(`/ws/${i}/${l}`, `expected ${wDim} values (the model's wDim), got ${row.length}`);
            flat.set(row, l * wDim);
          });
          return flat;
        });
  return rows.map((ws, i) => {
    truncateWs(ws, wAvg, render.psi, render.truncation_cutoff);
    return { spec: { latent: { kind: 'ws', ws }, ...noiseFor(i) } };
  });
}

/**
 * Names the truncation centre a request used, for the `X-Truncation-Center` header: `none` (psi 1),
 * `class` (the label-weighted per-class averages of a conditional model that stores them) or
 * `global` (the model's w_avg).
 */
export function truncationCenter(manifest: ModelManifest, latents: LatentRequest, psi: number): 'none' | 'class' | 'global' {
  if (psi === 1) return 'none';
  const mapsLatents = latents.seeds !== undefined || latents.z !== undefined;
  return mapsLatents && manifest.arch.cDim > 0 && manifest.wAvgPerClass ? 'class' : 'global';
}
