// The package version, reported in plugin meta.
export const VERSION = '0.1.0';
