/** Identity operations on stored data: merge/unmerge patients, the reconcile pass, duplicate listing. */
export type { DuplicateList, ListDuplicatesOptions } from './duplicates.ts';
export { listDuplicates } from './duplicates.ts';
export type { MergeMethod, MergeOptions, MergeResult, UnmergeOptions, UnmergeResult } from './merge.ts';
export { mergePatients, recomputePatient, unmergePatients } from './merge.ts';
export type { ReconcileMerge, ReconcileOptions, ReconcileResult } from './reconcile.ts';
export { reconcileOrganization } from './reconcile.ts';
export type { DbOrQuerier, OrganizationInfo, StoredIdentityRow } from './store.ts';
export { loadOrganization, loadStoredIdentities } from './store.ts';
