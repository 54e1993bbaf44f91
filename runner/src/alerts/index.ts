export { AlertMonitor, type AlertMonitorOptions } from './monitor.ts';
export { type Notice, subject, text } from './notify.ts';
export { type Condition, evaluateRules } from './rules.ts';
export { type ActiveAlert, activeAlerts } from './state.ts';
