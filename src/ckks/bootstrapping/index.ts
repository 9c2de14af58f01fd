export { Bootstrapper, type BootstrappingTimings, bootstrapResultScale } from './bootstrapper.ts';
export { applyMap, coeffsToSlotsMaps, composeMaps, type DiagonalMap, slotsToCoeffsMaps } from './dft.ts';
export { EvalMod, type EvalModLiteral } from './eval-mod.ts';
export { type BootstrappingKeys, DenseToSparseKey, generateEncapsulationKeys } from './keys.ts';
export { BootstrappingParameters, type BootstrappingParametersLiteral } from './parameters.ts';
