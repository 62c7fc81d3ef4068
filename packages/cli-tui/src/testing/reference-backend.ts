// A backend for the CLI's own tests: core's plain-JS reference ops, no model execution. Used as
// a third-party backend module (`--backend <this file>`), which also exercises that path.
import { BackendError, type Backend } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';

export default function referenceBackend(): Backend {
  return {
    name: 'reference',
    capabilities: { grad: false, devices: ['cpu'], dtypes: ['float32', 'int32'] },
    ops: referenceOps(),
    describe: () => 'plain-JS reference ops (tests only)',
    loadModel: async () => { throw new BackendError('the reference test backend cannot run models'); },
    dispose: async () => undefined,
  };
}
