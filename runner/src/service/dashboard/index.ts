export { type StatusView, statusView } from './data.ts';
export { BEAT_MS, InstanceRegistry, type InstanceView, listInstances } from './instances.ts';
export { type DashboardOptions, dashboardRoutes } from './routes.ts';
export type { AdminGate } from './session.ts';
