// @sfc/cli public surface: the CLI runner and the pieces the terminal UI and tools reuse.
export { runCli, buildParser, VERSION } from './cli.js';
export { processIO, memoryIO, type CliIO, type OutStream } from './io.js';
export { formatError, UsageError } from './error-format.js';
export { writeFileAtomic, checkOutputPath, type AtomicContent } from './write-atomic.js';
export { createProgress, type ProgressEvent, type ProgressReporter } from './progress.js';
export { resolveConfig, findConfigFile, CONFIG_FILE_NAME, EffectiveConfig, type ValueSource } from './config/config.js';
export { CONFIG_FIELDS, toJsonSchema, type ConfigField } from './config/schema.js';
export { selectBackend } from './backends.js';
export { COMMANDS } from './commands/index.js';
export type { SfcCommand } from './commands/command.js';
export { renderCliDocs, withConfigKeys } from './cli-docs.js';
