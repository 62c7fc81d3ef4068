// @sfc/backend-onnx public surface.
export { onnxBackend, type OnnxBackendOptions } from './backend.js';
