#!/usr/bin/env node
// meshward command line. Each subcommand lives in its own module under cli/.
import { Command } from 'commander';
import { registerServe } from './cli/serve.ts';
import { registerDemo } from './cli/demo.ts';

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

await program.parseAsync(process.argv);
