// Every `sfc` command, in the order `sfc --help` lists them.
import type { SfcCommand } from './command.js';
import { attributeCommand } from './attribute.js';
import { benchCommand } from './bench.js';
import { circuitsCommand } from './circuits.js';
import { configCommand } from './config.js';
import { convertCommand } from './convert.js';
import { discoverCommand } from './discover.js';
import { evaluateCommand } from './evaluate.js';
import { exportCommand } from './export.js';
import { demoCommand } from './demo.js';
import { dictCommand } from './dict.js';
import { forwardCommand } from './forward.js';
import { infoCommand } from './info.js';
import { mergeCommand } from './merge.js';
import { plotCommand } from './plot.js';
import { steerCommand } from './steer.js';
import { trainSaeCommand } from './train-sae.js';
import { tuiCommand } from './tui.js';

export const COMMANDS: readonly SfcCommand[] = [demoCommand, infoCommand, forwardCommand, attributeCommand, discoverCommand, circuitsCommand, evaluateCommand, mergeCommand, plotCommand, steerCommand, trainSaeCommand, exportCommand, convertCommand, dictCommand, tuiCommand, benchCommand, configCommand];
