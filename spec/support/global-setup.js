// Runs once before the suite. The worker thread (later issues) loads compiled JavaScript, so
// the suite insists on a build; and CI insists on every peer being installed.
const { existsSync } = require('node:fs');
const path = require('node:path');

module.exports = async () => {
  const dist = path.join(__dirname, '..', '..', 'dist', 'index.js');
  if (!existsSync(dist)) {
    throw new Error('dist/ is missing: run the tests with `npm test`, which builds first');
  }
};
