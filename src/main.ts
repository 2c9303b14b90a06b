#!/usr/bin/env node
/** The `latchkey` executable (package.json bin). The commands live in src/cli/ (index.ts dispatches). */
import { fail, run } from './cli/index.js';

run(process.argv.slice(2)).catch(fail);
