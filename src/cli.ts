#!/usr/bin/env node
/**
 * Command-line entry point:
 *   stylegan-serve serve [--port N] [--models-dir DIR] [--model NAME] [...]   start the HTTP server
 *   stylegan-serve convert <checkpoint | https://...> --name NAME [--models-dir DIR] [--sha256 HEX] [--fp16]
 *   stylegan-serve sample-model [--models-dir DIR] [--if-missing]             build the offline sample model
 */

import { parseArgs } from 'node:util';
import { ConfigError, loadServerConfig, redactConfig, settingSpecs, settingsHelp } from './config.js';
import { convertCheckpoint } from './convert-command.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { converterVersion } from './graph/model-manifest.js';
import { sampleModelName, writeSampleModel } from './graph/sample-model.js';
import { createLogger } from './log.js';
import { startServer } from './server.js';

const usage = `Usage: stylegan-serve <command> [options]  (in a checkout: node dist/cli.js, or npx stylegan-serve)
  stylegan-serve serve [options]                 start the HTTP server
  stylegan-serve convert <file|url> --name NAME  convert a StyleGAN2 checkpoint into <models-dir>/NAME
      [--models-dir DIR] [--sha256 HEX] [--force] [--fp16]
                                                 --fp16 also writes synthesis_fp16.onnx (serve it with --precision fp16)
  stylegan-serve sample-model [--models-dir DIR] [--if-missing]
                                                 build the untrained offline sample model "sample"

Checkpoints: NVlabs stylegan2-ada-pytorch and stylegan3 (StyleGAN2 generator) network pickles,
TensorFlow StyleGAN2 pickles, rosinality .pt files. Nothing in a checkpoint is executed.

serve options (flag, environment variable, meaning):
${settingsHelp()}`;

async function serveCommand(args: string[]): Promise<void> {
  const options = Object.fromEntries(
    Object.values(settingSpecs).map((spec) => [spec.flag, { type: 'string' as const }]),
  );
  const { values } = parseArgs({ args, options: { ...options, help: { type: 'boolean' } }, allowPositionals: false });
  if (values.help) {
    process.stdout.write(usage + '\n');
    return;
  }
  const config = loadServerConfig(values as Record<string, string | undefined>);
  const logger = createLogger({ level: config.logLevel });
  logger.info({ config: redactConfig(config) }, 'configuration');
  const server = await startServer(config, logger);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      server.shutdown(signal).then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}

async function sampleModelCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { 'models-dir': { type: 'string', default: 'models' }, 'if-missing': { type: 'boolean', default: false } },
  });
  const modelsDir = values['models-dir']!;
  const manifestPath = join(modelsDir, sampleModelName, 'model.json');
  if (values['if-missing'] && existsSync(manifestPath)) {
    const existing = JSON.parse(readFileSync(manifestPath, 'utf8')) as { converterVersion?: number };
    if (existing.converterVersion === converterVersion) {
      process.stderr.write(`sample model already present in ${join(modelsDir, sampleModelName)}\n`);
      return;
    }
  }
  const started = performance.now();
  await writeSampleModel(modelsDir, { overwrite: true });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stderr.write(`sample model (untrained, random weights) written to ${join(modelsDir, sampleModelName)} in ${seconds} s\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serveCommand(rest);
    case 'convert':
      return convertCheckpoint(rest);
    case 'sample-model':
      return sampleModelCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage + '\n');
      return;
    default:
      throw new ConfigError(`unknown command "${command}"; expected serve, convert or sample-model (see --help)`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // util.parseArgs reports unknown or malformed options as TypeErrors with an ERR_PARSE_ARGS code.
  if (err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) {
    err = new ConfigError(`${err.message}; see --help`);
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`stylegan-serve: ${message}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
