/**
 * Image encoding: float `[C, H, W]` generator output to uint8 HWC, then PNG or WebP (or an animated
 * WebP/GIF, or a grid) with sharp. The only module that imports sharp. sharp encodes on libuv's
 * thread pool, so only the float-to-uint8 loop runs on the event loop (about 34 ms for a 1024x1024
 * image on a 2-vCPU x86-64 test machine).
 */

import sharp, { type Sharp } from 'sharp';
import type { Histogram } from 'prom-client';

export type ImageFormat = 'png' | 'webp';

/** Channel count and size of a `[C, H, W]` image; C is 1 (grey) or 3 (RGB). */
export interface ImageShape {
  channels: number;
  height: number;
  width: number;
}

export interface EncodeOptions {
  format: ImageFormat;
  /** WebP quality 1-100 for lossy WebP; default 90. Ignored for PNG. */
  quality?: number;
  /** Lossless WebP; default false. PNG is always lossless. */
  lossless?: boolean;
  /**
   * zlib level 0-9; default 1. Level 1 was 1.3-2x faster than 6 for 12-17% larger files (sharp 0.35.6,
   * 256² and 1024² images, one core of a 2-vCPU x86-64 machine).
   */
  pngCompressionLevel?: number;
  /** WebP effort 0-6; default 0. At quality 90, effort 4 took 3-6x longer than 0 in the same measurements. */
  webpEffort?: number;
}

export const defaultPngCompressionLevel = 1;
export const defaultWebpQuality = 90;
export const defaultWebpEffort = 0;

let encodeHistogram: Histogram<'format'> | undefined;

/** Records every encode duration in `histogram` (labelled by format); the inference service sets it. */
export function setEncodeHistogram(histogram: Histogram<'format'> | undefined): void {
  encodeHistogram = histogram;
}

function assertShape(data: Float32Array, shape: ImageShape, label: string): void {
  if (shape.channels !== 1 && shape.channels !== 3) throw new RangeError(`${label}: ${shape.channels} channels, expected 1 or 3`);
  const expected = shape.channels * shape.height * shape.width;
  if (data.length !== expected) {
    throw new RangeError(`${label} has ${data.length} values, expected ${shape.channels}x${shape.height}x${shape.width} = ${expected}`);
  }
}

/**
 * Converts float `[C, H, W]` (nominally [-1, 1]) to uint8 `[H, W, C]` exactly as the NVlabs tools do:
 * `x·127.5 + 128` in float32, clamped to [0, 255] and truncated.
 */
export function toUint8Hwc(data: Float32Array, shape: ImageShape, out = new Uint8Array(data.length)): Uint8Array {
  assertShape(data, shape, 'image');
  const { channels, height, width } = shape;
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    const base = c * plane;
    for (let p = 0; p < plane; p++) {
      const v = Math.fround(Math.fround(data[base + p] * 127.5) + 128);
      let byte = 0; // NaN and values <= 0 stay 0
      if (v >= 255) byte = 255;
      else if (v > 0) byte = Math.floor(v);
      out[p * channels + c] = byte;
    }
  }
  return out;
}

function rawInput(shape: ImageShape, pageHeight?: number) {
  return { raw: { width: shape.width, height: shape.height, channels: shape.channels as 1 | 3, ...(pageHeight ? { pageHeight } : {}) } };
}

function withFormat(image: Sharp, options: EncodeOptions): Sharp {
  if (options.format === 'png') {
    return image.png({ compressionLevel: options.pngCompressionLevel ?? defaultPngCompressionLevel });
  }
  return image.webp({
    quality: options.quality ?? defaultWebpQuality,
    lossless: options.lossless ?? false,
    effort: options.webpEffort ?? defaultWebpEffort,
  });
}

async function timed<T>(format: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    encodeHistogram?.observe({ format }, (performance.now() - started) / 1000);
  }
}

/** Encodes one float `[C, H, W]` image as PNG or WebP. */
export function encodeImage(data: Float32Array, shape: ImageShape, options: EncodeOptions): Promise<Buffer> {
  return timed(options.format, () => {
    const pixels = toUint8Hwc(data, shape); // [H, W, C]
    return withFormat(sharp(pixels, rawInput(shape)), options).toBuffer();
  });
}

export interface AnimationOptions {
  format: 'webp' | 'gif';
  /** Display time of every frame, in ms. */
  delayMs: number;
  /** Number of loops; 0 loops forever (default). */
  loop?: number;
  /** WebP quality 1-100; default 90. */
  quality?: number;
  /** Lossless WebP; default false. */
  lossless?: boolean;
  /** WebP effort 0-6 (default 0) or GIF effort 1-10 (default 1, several times faster than sharp's default 7). */
  effort?: number;
}

/** Encodes float `[C, H, W]` frames as an animated WebP or GIF. */
export function encodeAnimation(frames: readonly Float32Array[], shape: ImageShape, options: AnimationOptions): Promise<Buffer> {
  if (frames.length === 0) throw new RangeError('an animation needs at least one frame');
  return timed(`${options.format}-animation`, () => {
    const frameBytes = shape.channels * shape.height * shape.width;
    const pixels = new Uint8Array(frames.length * frameBytes); // [N·H, W, C], frames stacked vertically
    frames.forEach((frame, i) => toUint8Hwc(frame, shape, pixels.subarray(i * frameBytes, (i + 1) * frameBytes)));
    const tall = sharp(pixels, rawInput({ ...shape, height: shape.height * frames.length }, shape.height));
    // A scalar GIF delay applies to the first frame only (sharp 0.35.6), so pass one per frame.
    const delay = Array<number>(frames.length).fill(options.delayMs);
    const loop = options.loop ?? 0;
    if (options.format === 'gif') return tall.gif({ delay, loop, effort: options.effort ?? 1, dither: 0 }).toBuffer();
    return tall
      .webp({ delay, loop, quality: options.quality ?? defaultWebpQuality, lossless: options.lossless ?? false, effort: options.effort ?? defaultWebpEffort })
      .toBuffer();
  });
}

export interface GridOptions extends EncodeOptions {
  /** Images per row. */
  columns: number;
  /** Gap between images in pixels, filled with black; default 0. */
  gapPx?: number;
}

/** Lays float `[C, H, W]` images out row-major in a grid and encodes it as one PNG or WebP. */
export function encodeGrid(images: readonly Float32Array[], shape: ImageShape, options: GridOptions): Promise<Buffer> {
  if (images.length === 0) throw new RangeError('a grid needs at least one image');
  if (!Number.isInteger(options.columns) || options.columns < 1) throw new RangeError(`invalid grid columns ${options.columns}: expected an integer >= 1`);
  return timed(`${options.format}-grid`, () => {
    const { channels, height, width } = shape;
    const gap = options.gapPx ?? 0;
    const columns = Math.min(options.columns, images.length);
    const rows = Math.ceil(images.length / columns);
    const gridWidth = columns * width + (columns - 1) * gap;
    const gridHeight = rows * height + (rows - 1) * gap;
    const grid = new Uint8Array(gridWidth * gridHeight * channels); // [gridH, gridW, C]
    const tile = new Uint8Array(width * height * channels); // [H, W, C]
    images.forEach((image, i) => {
      toUint8Hwc(image, shape, tile);
      const x0 = (i % columns) * (width + gap);
      const y0 = Math.floor(i / columns) * (height + gap);
      for (let y = 0; y < height; y++) {
        grid.set(tile.subarray(y * width * channels, (y + 1) * width * channels), ((y0 + y) * gridWidth + x0) * channels);
      }
    });
    return withFormat(sharp(grid, rawInput({ channels, height: gridHeight, width: gridWidth })), options).toBuffer();
  });
}

/** Image formats `decodeUpload` accepts, by sharp's format name. */
export const uploadFormats = ['png', 'jpeg', 'webp'] as const;
/** Background that transparent upload pixels are flattened onto. */
export const uploadBackground = '#ffffff';

/** Why an upload was rejected: not a decodable PNG/JPEG/WebP, or more pixels than allowed. */
export class UploadError extends Error {
  constructor(
    readonly reason: 'unsupported' | 'too-many-pixels' | 'corrupt',
    message: string,
  ) {
    super(message);
    this.name = 'UploadError';
  }
}

/** A decoded, pre-processed upload. */
export interface DecodedUpload {
  /** `[size, size, 3]` sRGB uint8, row-major. */
  rgb: Uint8Array;
  /** Format, size as stored, EXIF orientation and the size after orientation. */
  source: { format: string; width: number; height: number; orientation: number; orientedWidth: number; orientedHeight: number; channels: number; hasAlpha: boolean };
}

/**
 * Decodes an uploaded PNG, JPEG or WebP into a `[size, size, 3]` RGB target: EXIF orientation
 * applied, centre crop to a square, Lanczos-3 resize to `size`, alpha flattened onto white, and
 * greyscale converted to RGB. The header is read first, so an image over `maxPixels` is rejected
 * before its pixels are decoded. Throws UploadError.
 */
export async function decodeUpload(bytes: Uint8Array, size: number, maxPixels: number): Promise<DecodedUpload> {
  let metadata: Awaited<ReturnType<Sharp['metadata']>>;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new UploadError('unsupported', `the upload is not a readable image (${(err as Error).message}); send a PNG, JPEG or WebP file`);
  }
  const format = metadata.format ?? 'unknown';
  if (!(uploadFormats as readonly string[]).includes(format)) {
    throw new UploadError('unsupported', `the upload is a ${format} image; send a PNG, JPEG or WebP file`);
  }
  const { width, height } = metadata;
  if (!width || !height) throw new UploadError('corrupt', 'the image header has no width or height; the file is damaged');
  if (width * height > maxPixels) {
    throw new UploadError('too-many-pixels', `the image is ${width}x${height} = ${width * height} pixels, more than the server's limit of ${maxPixels}; downscale it first`);
  }
  const orientation = metadata.orientation ?? 1;
  const swapsAxes = orientation >= 5 && orientation <= 8;
  try {
    const { data } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', autoOrient: true })
      .resize(size, size, { fit: 'cover', position: 'centre', kernel: 'lanczos3' })
      .flatten({ background: uploadBackground })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (data.length !== size * size * 3) throw new Error(`decoder returned ${data.length} bytes, expected ${size * size * 3}`);
    return {
      rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      source: {
        format,
        width,
        height,
        orientation,
        orientedWidth: swapsAxes ? height : width,
        orientedHeight: swapsAxes ? width : height,
        channels: metadata.channels ?? 3,
        hasAlpha: metadata.hasAlpha ?? false,
      },
    };
  } catch (err) {
    throw new UploadError('corrupt', `the image could not be decoded (${(err as Error).message}); the file is damaged or truncated`);
  }
}
