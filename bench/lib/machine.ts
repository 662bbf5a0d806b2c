/** Describes the machine a benchmark ran on, for the BENCHMARKS.md tables. */

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, totalmem } from 'node:os';

import sharp from 'sharp';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  onnxruntime: string;
  sharp: string;
}

function lscpuModel(): string {
  try {
    const out = execFileSync('lscpu', { encoding: 'utf8' });
    return /^Model name:\s*(.+)$/m.exec(out)?.[1].trim() ?? cpus()[0]?.model ?? 'unknown';
  } catch {
    return cpus()[0]?.model ?? 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  const require = createRequire(import.meta.url);
  return {
    cpuModel: lscpuModel(),
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime: (require('onnxruntime-node/package.json') as { version: string }).version,
    sharp: (sharp.versions as { sharp?: string }).sharp ?? 'unknown',
  };
}

export function machineLine(info: MachineInfo = machineInfo()): string {
  return `${info.cpuModel}, ${info.cores} cores, ${info.memoryGiB} GiB, Node ${info.node}, onnxruntime-node ${info.onnxruntime}, sharp ${info.sharp}`;
}
