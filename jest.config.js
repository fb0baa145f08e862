/** Jest runs the TypeScript specs through ts-jest; the worker thread (later issues) loads dist/. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/spec'],
  testMatch: ['**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/spec/tsconfig.json' }],
  },
  globalSetup: '<rootDir>/spec/support/global-setup.js',
  testTimeout: 60000,
  reporters: ['default', '<rootDir>/spec/support/summary-reporter.js'],
};
