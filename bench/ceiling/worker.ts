import { NativeConnection, Worker } from '@temporalio/worker';
import { loadEnv } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createCeilingActivities } from './activities';

/**
 * Worker for the ceiling workflows. Built with the same Worker.create options as
 * src/workers/main.ts (namespace, task queue from env, SDK defaults for concurrency and cache),
 * so the only difference from the real worker is what the activities do.
 */
async function main(): Promise<void> {
  const env = loadEnv();
  const log = createLogger('ceiling-worker', env.LOG_LEVEL);
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.TEMPORAL_TASK_QUEUE,
    workflowsPath: require.resolve('./workflows'),
    activities: createCeilingActivities(),
  });
  const onSignal = () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  log.info({ task_queue: env.TEMPORAL_TASK_QUEUE }, 'ceiling worker running');
  try {
    await worker.run();
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  createLogger('ceiling-worker').fatal({ err }, 'ceiling worker crashed');
  process.exit(1);
});
