// @sfc/backend-tfjs public surface: the backend factory and its options.
export { tfjsBackend, type TfjsBackendOptions, type TfjsFlavor, type TfjsFlavorOption } from './backend.js';
