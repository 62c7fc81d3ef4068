// Safe readers for the binary files SAEs and circuits come in (re-exported by the package index).
export {
  unpickle, dictAttributes, isPickleObject, isTuple, PickleGlobal,
  type PickleValue, type PickleObject, type PickleRecord, type PickleLimits, type GlobalHandler, type UnpickleOptions,
} from './pickle.js';
export {
  readTorchCheckpoint, stateDict, isDenseTensor, isSparseCoo, TORCH_ALLOWED_GLOBALS,
  type TorchCheckpoint, type TorchCheckpointOptions, type TorchStorage, type StateDictEntry, type StateDictOptions,
} from './torch-checkpoint.js';
export { readNpy, readNpz, type NpyArray, type NpyOptions } from './npz.js';
export {
  readFcCircuit, SPARSE_ACT_CLASSES,
  type FcCircuit, type FcCircuitNode, type FcEdge, type FcCircuitOptions,
} from './fc-circuit.js';
export { toDense, toFloat32Data, type DType, type TensorData, type DenseTensor, type SparseCooTensor } from './tensor-data.js';
export { DEFAULT_LIMITS, type FormatLimits } from './limits.js';
export { bytesSource, fileSource, withFileSource, type ByteSource } from './byte-source.js';
