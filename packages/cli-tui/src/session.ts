// What a command needs before it works: the effective config for its flags, a backend, a loaded
// model, and warning/progress output that respects --quiet. Commands ask for these here so the
// order (config → backend → model) and the cleanup are the same everywhere.

import { resolve } from 'node:path';
import { Model, sanitizeMessage, type Backend } from '@sfc/core';
import { applyCircuitInputs } from './circuit-inputs.js';
import { onnxSettings, selectBackend } from './backends.js';
import { embedSubmoduleAsked } from './dictionaries.js';
import { codeSources, formatCodeSources } from './code-sources.js';
import { configSearchFolders, resolveConfig, type EffectiveConfig } from './config/config.js';
import type { CliIO } from './io.js';
import { flagValues, type OptionId } from './options.js';
import { createProgress, type ProgressReporter } from './progress.js';
import type { GlobalArgs } from './commands/command.js';

/**
 * The effective config of a command: file and flags, then — for commands that load a model
 * (`model` among their options) and open a circuit (`circuit` positional or --circuit) — the
 * circuit's own model and SAEs (flag > circuit > config; circuit-inputs.ts).
 */
export async function resolveCommandConfig(io: CliIO, argv: GlobalArgs, options: readonly OptionId[]): Promise<EffectiveConfig> {
  const config = await resolveConfig({ cwd: io.cwd, ...(argv.config !== undefined ? { configPath: argv.config } : {}), flags: flagValues(argv, options) });
  return options.includes('model') && typeof argv.circuit === 'string' ? applyCircuitInputs(config, resolve(io.cwd, argv.circuit)) : config;
}

export class Session {
  private backendInstance: Backend | undefined;
  private models: Model[] = [];

  constructor(readonly io: CliIO, readonly argv: GlobalArgs, readonly config: EffectiveConfig) {}

  static async open(io: CliIO, argv: GlobalArgs, options: readonly OptionId[]): Promise<Session> {
    const config = await resolveCommandConfig(io, argv, options);
    const s = new Session(io, argv, config);
    if (argv.verbose) {
      s.detail(`config: ${config.file ?? `none (searched ${configSearchFolders(io.cwd).join(', ')})`}`);
      s.detail(formatCodeSources(codeSources(config, io.cwd)));
    }
    return s;
  }

  /** Runs `fn` with a session and always releases the backend and models afterwards. */
  static async with<T>(io: CliIO, argv: GlobalArgs, options: readonly OptionId[], fn: (s: Session) => Promise<T>): Promise<T> {
    const s = await Session.open(io, argv, options);
    try {
      return await fn(s);
    } finally {
      await s.close();
    }
  }

  get quiet(): boolean {
    return this.argv.quiet === true;
  }

  warn = (message: string): void => {
    if (!this.quiet) this.io.stderr.write(`warning: ${sanitizeMessage(message)}\n`);
  };

  /** Details for --verbose only (which config file, which code files), on stderr. */
  detail(message: string): void {
    if (this.argv.verbose) this.io.stderr.write(`${message.replace(/^/gm, 'verbose: ')}\n`);
  }

  /** A one-line status message on stderr (stdout stays for data). */
  status(message: string): void {
    if (!this.quiet) this.io.stderr.write(`${sanitizeMessage(message)}\n`);
  }

  progress(): ProgressReporter {
    return createProgress({ stream: this.io.stderr, quiet: this.quiet });
  }

  async backend(): Promise<Backend> {
    this.backendInstance ??= await selectBackend(this.config.require<string | string[]>('backend', '--backend'),
      { cwd: this.io.cwd, onnx: onnxSettings(this.config, this.warn) });
    return this.backendInstance;
  }

  /** `needs`: submodules the command names outside the config (train-sae's --submodule), so Gemma gets `embed` when one is it. */
  async model(needs: readonly string[] = []): Promise<Model> {
    const dir = this.config.require<string>('model', '--model');
    const m = await Model.load(dir, await this.backend(), {
      warn: this.warn, allowUnknown: this.argv['allow-unknown'] === true, embedSubmodule: embedSubmoduleAsked(this.config, needs),
    });
    this.models.push(m);
    return m;
  }

  async close(): Promise<void> {
    for (const m of this.models) m.dispose();
    this.models = [];
    await this.backendInstance?.dispose();
    this.backendInstance = undefined;
  }
}
