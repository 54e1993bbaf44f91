import { evaluateMatching, formatReport } from './src/identity/evaluate.ts';
const seed = Number(process.argv[2] ?? 20250627);
const order = (process.argv[4] ?? 'shuffled') as any;
const mergeBridges = process.argv[5] === 'bridges';
const r = await evaluateMatching({ seed, order, mergeBridges });
console.log(formatReport(r, Number(process.argv[3] ?? 8)));
