import { Client, Connection } from '@temporalio/client';
import type { Env } from '../config';

/** A short-lived Temporal client for one piece of work (a CLI command, start-up work), closed after it. */
export async function withTemporalClient<T>(env: Pick<Env, 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE'>, work: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  try {
    return await work(new Client({ connection, namespace: env.TEMPORAL_NAMESPACE }));
  } finally {
    await connection.close();
  }
}
