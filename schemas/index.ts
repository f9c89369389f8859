export * from './tool.ts';
export * from './message.ts';
export * from './task.ts';
export * from './trajectory.ts';
