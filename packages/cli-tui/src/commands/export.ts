// `sfc export neuronpedia`: a circuit's features as Neuronpedia quick-list URLs (to browse their
// dashboards); error nodes have no pages and are reported as skipped.

import { resolve } from 'node:path';
import { formatQuickListUrls, readCircuitFile, selectCircuitFeatures, DEFAULT_SAE_SET, QUICK_LIST_LIMIT } from '@sfc/steering';
import { Session } from '../session.js';
import type { SfcCommand } from './command.js';
import { fcCircuitReader } from './convert.js';

const neuronpediaCommand: SfcCommand = {
  command: 'neuronpedia <circuit>',
  describe: 'Print Neuronpedia quick-list URLs for the features of a circuit (top-k by |effect|)',
  options: ['json'],
  builder: (y) => y
    .positional('circuit', { type: 'string', describe: 'Circuit file (sfc.circuit/v1, or a feature-circuits .pt)' })
    .option('model-id', { type: 'string', requiresArg: true, demandOption: true, describe: 'Neuronpedia model id, e.g. pythia-70m-deduped' })
    .option('sae-set', { type: 'string', requiresArg: true, default: DEFAULT_SAE_SET, describe: 'Neuronpedia SAE set of the layers (layers are e-res-SET, 3-res-SET, 3-att-SET, 3-mlp-SET)' })
    .option('top-k', { type: 'number', requiresArg: true, describe: 'Only the k features of largest |effect|' })
    .option('threshold', { type: 'number', requiresArg: true, describe: 'Only features with |effect| above this' })
    .option('submodules', { type: 'string', requiresArg: true, describe: 'Only these submodules, comma-separated (e.g. resid_2,mlp_3)' })
    .option('name', { type: 'string', requiresArg: true, describe: 'List name (default: the circuit file name)' })
    .option('per-list', { type: 'number', requiresArg: true, default: QUICK_LIST_LIMIT, describe: `Features per URL (at most ${QUICK_LIST_LIMIT}; longer lists are split)` }),
  examples: [
    ['$0 export neuronpedia circuit.json --model-id pythia-70m-deduped --top-k 30', 'One quick-list URL with the 30 strongest features'],
  ],
  run: async (argv, io) => {
    const s = await Session.open(io, argv, []);
    const path = resolve(io.cwd, argv.circuit as string);
    const circuit = await readCircuitFile(path, [fcCircuitReader({}, (c) => c.warnings.forEach(s.warn))]);
    const features = selectCircuitFeatures(circuit, {
      ...(argv['top-k'] !== undefined ? { topK: argv['top-k'] as number } : {}),
      ...(argv.threshold !== undefined ? { threshold: argv.threshold as number } : {}),
      ...(argv.submodules ? { submodules: String(argv.submodules).split(',').map((x) => x.trim()).filter(Boolean) } : {}),
    });
    const name = (argv.name as string | undefined) ?? (argv.circuit as string).replace(/^.*\//, '').replace(/\.(json|pt|pth)$/i, '');
    const { urls, skipped } = formatQuickListUrls(features, {
      modelId: argv['model-id'] as string, saeSet: argv['sae-set'] as string, name, maxPerList: argv['per-list'] as number,
    });
    if (skipped.length) s.warn(`${skipped.length} error nodes skipped (Neuronpedia has pages for features only)`);
    io.stdout.write(argv.json ? `${JSON.stringify({ schema: 'sfc.neuronpedia-export/v1', features: features.length - skipped.length, urls }, null, 2)}\n` : urls.map((u) => `${u}\n`).join(''));
    if (urls.length === 0) s.warn('no features selected: nothing to export');
  },
};

export const exportCommand: SfcCommand = {
  command: 'export',
  describe: 'Export a circuit for other tools',
  examples: [['$0 export neuronpedia circuit.json --model-id pythia-70m-deduped', 'Neuronpedia quick-list URLs']],
  subcommands: [neuronpediaCommand],
};
