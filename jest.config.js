// Jest runs TypeScript as native ESM (client-node 2.x is ESM-only); @swc/jest strips types quickly and
// `make lint` does the type checking. Tiers are projects so `--selectProjects` can run one.
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2023', keepClassNames: true },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
};

export default {
  testTimeout: 30000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/operator/**/*.test.ts'],
    },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'] },
    // The Dockerfile's stages performed without an engine (npm ci, build, prune), then the result run.
    { ...common, displayName: 'image', testMatch: ['<rootDir>/test/image/**/*.test.ts'] },
    {
      ...common,
      displayName: 'k8s',
      testMatch: ['<rootDir>/test/k8s/**/*.test.ts'],
      globalSetup: '<rootDir>/test/k8s/global-setup.ts',
      globalTeardown: '<rootDir>/test/k8s/global-teardown.ts',
    },
    {
      ...common,
      displayName: 'mattermost-real',
      testMatch: ['<rootDir>/test/mattermost-real/**/*.test.ts'],
      globalSetup: '<rootDir>/test/mattermost-real/global-setup.ts',
      globalTeardown: '<rootDir>/test/mattermost-real/global-teardown.ts',
    },
  ],
};
