/** `@routiq/runner/workbench`: the connector workbench (test reads, record/replay, connector data tests). */
export type { Cassette, Exchange, Recorder, ReplayServer } from './cassette.ts';
export { BASE, createRecorder, requestKey, startReplay, substituteBase } from './cassette.ts';
export type { ConnectorTestCase, ConnectorTestResult } from './connector-tests.ts';
export { listConnectorTests, loadConnectorTest, runConnectorTest } from './connector-tests.ts';
export type {
  CursorReport,
  NextRequest,
  RecordFailure,
  SampleRecord,
  ShownRequest,
  StreamReport,
  TargetKind,
  Totals,
  Warning,
  WorkbenchEvent,
  WorkbenchReport,
} from './report.ts';
export { emptyTotals } from './report.ts';
export type { CredentialNames } from './scrub.ts';
export { credentialNames, scrubSecrets } from './scrub.ts';
export type { RecordingContext, TestReadOptions, WorkbenchTarget } from './test-read.ts';
export { testRead } from './test-read.ts';
