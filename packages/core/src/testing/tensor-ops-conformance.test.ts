// The TensorOps conformance suite holds for core's own reference ops (so a failure in a
// backend's run points at the backend, not at the suite).
import { describe, expect, it } from 'vitest';
import { referenceOps } from './reference-ops.js';
import { runTensorOpsConformance } from './tensor-ops-conformance.js';

runTensorOpsConformance(referenceOps(), { describe, it, expect }, 'referenceOps conformance');
