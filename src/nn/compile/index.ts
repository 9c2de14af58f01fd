export type {
  CompileLimits,
  CompileOptions,
  CompileResult,
  ProgramResources,
  RelinearizationPolicy,
} from './compile.ts';
export { chooseParameters, compileModel, DEFAULT_COMPILE_LIMITS } from './compile.ts';
