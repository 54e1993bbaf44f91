#!/usr/bin/env node
// Runs the TypeScript sources through tsx's ESM loader: no build step between a change and `npx routiq`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
