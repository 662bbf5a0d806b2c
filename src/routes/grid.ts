/**
 * Lays out style-mixing results like the reference grid.png: a (rows + 1) × (cols + 1) grid of
 * R×R cells, black top-left cell, first row the column images, first column the row images.
 * Works on float images so the grid goes through the same uint8 conversion as single images.
 */

/** A float value that converts to uint8 0 (black): x·127.5 + 128 < 0. */
const blackLevel = -2;

export interface FloatImage {
  image: Float32Array; // [C, H, W]
  height: number;
  width: number;
}

export function composeGrid(
  channels: number,
  resolution: number,
  rowCount: number,
  colCount: number,
  rowImage: (r: number) => Float32Array, // each [C, R, R]
  colImage: (k: number) => Float32Array,
  mixImage: (r: number, k: number) => Float32Array,
): FloatImage {
  const height = (rowCount + 1) * resolution;
  const width = (colCount + 1) * resolution;
  const image = new Float32Array(channels * height * width).fill(blackLevel); // [C, H, W]
  const place = (cell: Float32Array, gridRow: number, gridCol: number) => {
    for (let ch = 0; ch < channels; ch++) {
      for (let y = 0; y < resolution; y++) {
        const src = (ch * resolution + y) * resolution;
        const dst = (ch * height + gridRow * resolution + y) * width + gridCol * resolution;
        image.set(cell.subarray(src, src + resolution), dst);
      }
    }
  };
  for (let k = 0; k < colCount; k++) place(colImage(k), 0, k + 1);
  for (let r = 0; r < rowCount; r++) {
    place(rowImage(r), r + 1, 0);
    for (let k = 0; k < colCount; k++) place(mixImage(r, k), r + 1, k + 1);
  }
  return { image, height, width };
}

/** Lays `[C, R, R]` images side by side, left to right. */
export function composeStrip(channels: number, resolution: number, images: Float32Array[]): FloatImage {
  const height = resolution;
  const width = images.length * resolution;
  const image = new Float32Array(channels * height * width); // [C, H, W]
  images.forEach((cell, k) => {
    for (let ch = 0; ch < channels; ch++) {
      for (let y = 0; y < resolution; y++) {
        const src = (ch * resolution + y) * resolution;
        image.set(cell.subarray(src, src + resolution), (ch * height + y) * width + k * resolution);
      }
    }
  });
  return { image, height, width };
}
