/**
 * Three projects: unit (no outside services), integration (real MariaDB/Redis), e2e (netns,
 * containerd). `testTimeout` is a global-only option in jest, so each project sets its
 * timeout in a setup file.
 */
const tsJest = ['ts-jest', { diagnostics: false }];
// build/ holds tsc output (with its own copy of package.json): keep it out of module resolution.
const base = { transform: { '^.+\\.ts$': tsJest }, testEnvironment: 'node', moduleFileExtensions: ['ts', 'js', 'json'], modulePathIgnorePatterns: ['<rootDir>/build/'] };
module.exports = {
  // The file crawler, not watchman: a watchman install on a CI host can hang jest at start.
  watchman: false,
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...base, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/setup/integration-timeout.js'] },
    { ...base, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/setup/e2e-timeout.js'] },
    // Issue 12's fault injection on the netns lab (npm run test:chaos).
    { ...base, displayName: 'chaos', testMatch: ['<rootDir>/test/chaos/**/*.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/setup/e2e-timeout.js'] },
  ],
};
