#!/usr/bin/env node
// meshward command line. Each subcommand lives in its own module under cli/.
import { Command } from 'commander';
import { registerServe } from './cli/serve.ts';
import { registerDemo } from './cli/demo.ts';
import { registerReplay } from './cli/replay.ts';

const program = new Command();
program
  .name('meshward')
  .description('API-security runtime for Istio/Envoy service meshes')
  .showHelpAfterError()
  .exitOverride((err) => {
    // Usage errors exit 2; --help and --version exit 0.
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

registerServe(program);
registerDemo(program);
registerReplay(program);
(await import('./cli/policy.ts')).registerPolicy(program);
(await import('./cli/render.ts')).registerRender(program);
(await import('./cli/inventory.ts')).registerInventory(program);
(await import('./cli/report.ts')).registerReport(program);

await program.parseAsync(process.argv);
