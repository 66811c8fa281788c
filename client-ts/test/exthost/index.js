// Loaded by the real extension host (extensionTestsPath): runs the mocha suite and reports
// "N passed, N failed". Must export run(): Promise<void>.
const path = require('path');
const Mocha = require('mocha');

exports.run = function run() {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 60000, reporter: 'spec' });
  mocha.addFile(path.join(__dirname, 'extension.test.js'));
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      const { passes = 0 } = runner.stats || {};
      // tests that never ran (e.g. after a failing before-all hook) count as failed
      const notRun = Math.max(0, mocha.suite.total() - passes - failures);
      const summary = `${passes} passed, ${failures + notRun} failed`;
      console.log(summary);
      if (failures) reject(new Error(summary));
      else resolve();
    });
  });
};
